//! Generates the prost messages and tonic client/server stubs from `proto/` at build time.
//!
//! `protox` parses the .proto files in pure Rust, so no system `protoc` is needed; the
//! google/protobuf well-known types (Empty) come bundled with it.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "identity/credential.proto",
    "identity/associations/association.proto",
    "identity/associations/signature.proto",
    "identity/api/v1/identity.proto",
    "message_contents/signature.proto",
    "message_contents/public_key.proto",
    "mls/api/v1/mls.proto",
    "mls/message_contents/commit_log.proto",
    "mls/message_contents/content.proto",
    "mls/message_contents/group_membership.proto",
    "mls/message_contents/group_metadata.proto",
    "mls/message_contents/group_mutable_metadata.proto",
    "mls/message_contents/group_permissions.proto",
    "mls/message_contents/welcome_pointer.proto",
    "mls/message_contents/wrapper_encryption.proto",
    "xmtpv4/envelopes/envelopes.proto",
    "xmtpv4/message_api/message_api.proto",
    "xmtpv4/payer_api/payer_api.proto",
    "migration/api/v1/migration.proto",
    "grpc/health/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let fds = protox::compile(PROTOS, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
