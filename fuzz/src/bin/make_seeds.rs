//! Writes the binary seed corpora that only the real client code can make: MLS messages,
//! welcomes, key packages and node requests. Usage: `make_seeds <corpus dir>`.

// Linked for the coverage symbols the instrumented build references; its `main` is not used.
extern crate libfuzzer_sys;

use std::path::Path;

use prost::Message;
use xmtp_client::identity::{create_inbox_update, Wallet};
use xmtp_client::mls::content::{encode_text, envelope};
use xmtp_client::mls::dm::encrypt;
use xmtp_proto::identity_api::PublishIdentityUpdateRequest;
use xmtp_proto::mls_api::{
    group_message_input, GroupMessageInput, KeyPackageUpload, SendGroupMessagesRequest,
    UploadKeyPackageRequest,
};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("create corpus dir");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_seeds <corpus dir>");
    let dir = Path::new(&dir);
    let mut dm = herald_fuzz::Dm::new();
    let payload = envelope(encode_text("gm"), "seed-1");
    let message = encrypt(
        &dm.alice.provider,
        &dm.alice.key,
        &mut dm.alice_group,
        &payload,
    )
    .expect("encrypt");

    write(dir, "mls_message", "application", &message);
    write(dir, "mls_message", "commit", &dm.commit);
    write(dir, "mls_message", "envelope", &payload);
    let mut wrapped = dm.wrapped_welcome.clone();
    wrapped.push(0);
    wrapped.extend_from_slice(&dm.wrapped_metadata);
    write(dir, "mls_welcome", "wrapped", &wrapped);
    write(dir, "mls_welcome", "welcome", &dm.welcome);
    write(dir, "key_package", "bob", &dm.bob_key_package);

    let wallet = Wallet::from_bytes(&[7u8; 32]).expect("wallet");
    let update = create_inbox_update(&wallet, &dm.alice.key, 0, 1_700_000_000_000_000_000);
    let mut req = vec![0u8];
    req.extend(
        PublishIdentityUpdateRequest {
            identity_update: Some(update),
        }
        .encode_to_vec(),
    );
    write(dir, "devnode_request", "identity_update", &req);
    let mut req = vec![1u8];
    req.extend(
        SendGroupMessagesRequest {
            messages: vec![GroupMessageInput {
                version: Some(group_message_input::Version::V1(group_message_input::V1 {
                    data: message.clone(),
                    sender_hmac: vec![1; 32],
                    should_push: true,
                })),
            }],
        }
        .encode_to_vec(),
    );
    write(dir, "devnode_request", "group_message", &req);
    let mut req = vec![2u8];
    req.extend(
        UploadKeyPackageRequest {
            key_package: Some(KeyPackageUpload {
                key_package_tls_serialized: dm.bob_key_package.clone(),
            }),
            is_inbox_id_credential: false,
        }
        .encode_to_vec(),
    );
    write(dir, "devnode_request", "key_package", &req);
}
