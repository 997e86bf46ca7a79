//! d14n envelopes: a ClientEnvelope survives the trip through the gateway's and the node's
//! wrappings, and the field numbers are the ones libxmtp 1.10.0 uses (docs/D14N.md).

use prost::Message;
use xmtp_proto::d14n_envelopes::{
    client_envelope, originator_envelope, AuthenticatedData, ClientEnvelope, Cursor,
    OriginatorEnvelope, PayerEnvelope, UnsignedOriginatorEnvelope,
};
use xmtp_proto::mls_api::{group_message_input, GroupMessageInput};

fn group_envelope() -> ClientEnvelope {
    ClientEnvelope {
        aad: Some(AuthenticatedData {
            target_topic: [&[0u8][..], &[7u8; 16]].concat(),
            depends_on: Some(Cursor {
                node_id_to_sequence_id: [(0, 5)].into(),
            }),
        }),
        payload: Some(client_envelope::Payload::GroupMessage(GroupMessageInput {
            version: Some(group_message_input::Version::V1(group_message_input::V1 {
                data: vec![1, 2, 3],
                sender_hmac: vec![9; 32],
                should_push: true,
            })),
        })),
    }
}

#[test]
fn a_client_envelope_round_trips_through_payer_and_originator_envelopes() {
    let client = group_envelope();
    let payer = PayerEnvelope {
        unsigned_client_envelope: client.encode_to_vec(),
        payer_signature: None,
        target_originator: 100,
        message_retention_days: 30,
    };
    let unsigned = UnsignedOriginatorEnvelope {
        originator_node_id: 10,
        originator_sequence_id: 42,
        originator_ns: 1_700_000_000_000_000_000,
        payer_envelope_bytes: payer.encode_to_vec(),
        base_fee_picodollars: 0,
        congestion_fee_picodollars: 0,
        expiry_unixtime: 0,
    };
    let wire = OriginatorEnvelope {
        unsigned_originator_envelope: unsigned.encode_to_vec(),
        proof: None,
    }
    .encode_to_vec();

    let outer = OriginatorEnvelope::decode(wire.as_slice()).unwrap();
    let unsigned2 =
        UnsignedOriginatorEnvelope::decode(outer.unsigned_originator_envelope.as_slice()).unwrap();
    assert_eq!(unsigned2, unsigned);
    let payer2 = PayerEnvelope::decode(unsigned2.payer_envelope_bytes.as_slice()).unwrap();
    assert_eq!(payer2.target_originator, 100);
    let client2 = ClientEnvelope::decode(payer2.unsigned_client_envelope.as_slice()).unwrap();
    assert_eq!(client2, client);
}

#[test]
fn field_numbers_match_libxmtp() {
    // aad = 1 { target_topic = 2, depends_on = 3 { map entry 1 { key 1, value 2 } } },
    // group_message = 2 { v1 = 1 { data = 1, sender_hmac = 2, should_push = 3 } }
    let short = ClientEnvelope {
        aad: Some(AuthenticatedData {
            target_topic: vec![0, 0xAA],
            depends_on: Some(Cursor {
                node_id_to_sequence_id: [(1, 2)].into(),
            }),
        }),
        payload: Some(client_envelope::Payload::GroupMessage(GroupMessageInput {
            version: Some(group_message_input::Version::V1(group_message_input::V1 {
                data: vec![0x55],
                sender_hmac: vec![],
                should_push: true,
            })),
        })),
    };
    let expected: &[u8] = &[
        0x0a, 0x0c, // aad (1), 12 bytes
        0x12, 0x02, 0x00, 0xAA, // target_topic (2)
        0x1a, 0x06, 0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, // depends_on (3) { map (1) {1: 2} }
        0x12, 0x07, // group_message (2), 7 bytes
        0x0a, 0x05, 0x0a, 0x01, 0x55, 0x18, 0x01, // v1 (1) { data (1), should_push (3) }
    ];
    assert_eq!(short.encode_to_vec(), expected);

    // OriginatorEnvelope: unsigned bytes = 1; UnsignedOriginatorEnvelope: node id 1, seq 2,
    // ns 3, payer bytes 4.
    let unsigned = UnsignedOriginatorEnvelope {
        originator_node_id: 1,
        originator_sequence_id: 2,
        originator_ns: 3,
        payer_envelope_bytes: vec![4],
        ..Default::default()
    };
    assert_eq!(
        unsigned.encode_to_vec(),
        [0x08, 1, 0x10, 2, 0x18, 3, 0x22, 1, 4]
    );
    let proof = OriginatorEnvelope {
        unsigned_originator_envelope: vec![],
        proof: Some(originator_envelope::Proof::BlockchainProof(
            xmtp_proto::d14n_envelopes::BlockchainProof {
                transaction_hash: vec![],
            },
        )),
    };
    assert_eq!(proof.encode_to_vec(), [0x1a, 0x00]);
}
