//! XMTP wire definitions for herald: the v3 node API and the decentralized network (d14n).
//!
//! The .proto files under `proto/` are herald's own rendition of the subset of
//! [xmtp/proto](https://github.com/xmtp/proto) that the v3 node API, DM creation and the
//! decentralized network (d14n) need; packages, message names and field numbers are
//! identical, so the bytes interoperate with the official SDK. The v3 files were written from
//! commit a7255163; libxmtp 1.10.0 builds against 6d7c607c (`crates/xmtp_proto/proto_version`
//! at tag node-bindings-1.10.0), against whose generated code the d14n files were checked
//! (docs/D14N.md). `build.rs` generates the prost
//! types and tonic client and server stubs.
//!
//! [`associations`] holds the pure identity rules (inbox ids, signature text, signature
//! verification, association-state replay) shared by the node and the client.

pub mod associations;
pub mod ed25519;

/// Generated code, one module per proto package (mirrors the package hierarchy).
pub mod xmtp {
    /// `xmtp.identity`
    pub mod identity {
        tonic::include_proto!("xmtp.identity");

        /// `xmtp.identity.associations`
        pub mod associations {
            tonic::include_proto!("xmtp.identity.associations");
        }

        /// `xmtp.identity.api.v1`
        pub mod api {
            pub mod v1 {
                tonic::include_proto!("xmtp.identity.api.v1");
            }
        }
    }

    /// `xmtp.message_contents` (XMTP v2 types referenced by legacy fields).
    pub mod message_contents {
        tonic::include_proto!("xmtp.message_contents");
    }

    /// `xmtp.mls`
    pub mod mls {
        /// `xmtp.mls.api.v1`
        pub mod api {
            pub mod v1 {
                tonic::include_proto!("xmtp.mls.api.v1");
            }
        }

        /// `xmtp.mls.message_contents`
        pub mod message_contents {
            tonic::include_proto!("xmtp.mls.message_contents");
        }
    }

    /// `xmtp.xmtpv4`: the decentralized network (d14n), see docs/D14N.md.
    pub mod xmtpv4 {
        /// `xmtp.xmtpv4.envelopes`
        pub mod envelopes {
            tonic::include_proto!("xmtp.xmtpv4.envelopes");
        }

        /// `xmtp.xmtpv4.message_api` (the nodes' ReplicationApi)
        pub mod message_api {
            tonic::include_proto!("xmtp.xmtpv4.message_api");
        }

        /// `xmtp.xmtpv4.payer_api` (the gateway's PayerApi)
        pub mod payer_api {
            tonic::include_proto!("xmtp.xmtpv4.payer_api");
        }
    }

    /// `xmtp.migration`
    pub mod migration {
        pub mod api {
            /// `xmtp.migration.api.v1` (D14nMigrationApi)
            pub mod v1 {
                tonic::include_proto!("xmtp.migration.api.v1");
            }
        }
    }
}

/// `grpc.health.v1`, the standard gRPC health check.
pub mod grpc {
    pub mod health {
        pub mod v1 {
            tonic::include_proto!("grpc.health.v1");
        }
    }
}

/// Short aliases for the packages used most.
pub use xmtp::identity::api::v1 as identity_api;
pub use xmtp::identity::associations as associations_proto;
pub use xmtp::mls::api::v1 as mls_api;
pub use xmtp::mls::message_contents as mls_contents;
pub use xmtp::xmtpv4::envelopes as d14n_envelopes;
pub use xmtp::xmtpv4::message_api as d14n_message_api;
pub use xmtp::xmtpv4::payer_api as d14n_payer_api;
