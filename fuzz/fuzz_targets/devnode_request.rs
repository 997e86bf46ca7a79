//! The devnode's request validation, on protobuf bytes as they arrive over gRPC. The first byte
//! picks the request:
//! 0 `PublishIdentityUpdateRequest` (association rules and signatures, applied to a new inbox
//!   and, when accepted, once more on top of the state it produced),
//! 1 `SendGroupMessagesRequest` (every message's MLS header),
//! 2 `UploadKeyPackageRequest` (key package parsing and openmls validation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use xmtp_devnode::mls_wire::{parse_group_message, validate_key_package};
use xmtp_proto::associations::apply_update;
use xmtp_proto::identity_api::PublishIdentityUpdateRequest;
use xmtp_proto::mls_api::{group_message_input, SendGroupMessagesRequest, UploadKeyPackageRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let Ok(req) = PublishIdentityUpdateRequest::decode(body) else {
                return;
            };
            let Some(update) = req.identity_update else {
                return;
            };
            if let Ok(state) = apply_update(None, &update) {
                let _ = apply_update(Some(state), &update);
            }
        }
        1 => {
            let Ok(req) = SendGroupMessagesRequest::decode(body) else {
                return;
            };
            for input in req.messages {
                if let Some(group_message_input::Version::V1(v1)) = input.version {
                    let _ = parse_group_message(&v1.data);
                }
            }
        }
        _ => {
            let Ok(req) = UploadKeyPackageRequest::decode(body) else {
                return;
            };
            if let Some(kp) = req.key_package {
                let _ = validate_key_package(&kp.key_package_tls_serialized);
            }
        }
    }
});
