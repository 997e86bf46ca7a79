//! The node API the client needs, as a trait, and its tonic (gRPC over h2c/TLS) implementation
//! for the v3 API; [`d14n`] implements it over XMTP's decentralized network.
//!
//! The trait speaks the generated proto types directly: the wire contract *is* the interface,
//! and a test double or a recording wrapper can implement it without a network.

use async_trait::async_trait;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use xmtp_proto::identity_api::{
    identity_api_client::IdentityApiClient, GetIdentityUpdatesRequest, GetIdentityUpdatesResponse,
    GetInboxIdsRequest, GetInboxIdsResponse, PublishIdentityUpdateRequest,
};
use xmtp_proto::mls_api::{
    mls_api_client::MlsApiClient, FetchKeyPackagesRequest, FetchKeyPackagesResponse,
    QueryGroupMessagesRequest, QueryGroupMessagesResponse, QueryWelcomeMessagesRequest,
    QueryWelcomeMessagesResponse, SendGroupMessagesRequest, SendWelcomeMessagesRequest,
    UploadKeyPackageRequest,
};

pub mod d14n;
mod subscribe;
pub use d14n::{D14nTransport, GatewayAuth};
pub use subscribe::{GroupArrival, GroupStream, Subscriptions, TopicStream};

/// libxmtp's gRPC payload limit (25 MiB), applied to both directions.
const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// Errors from talking to the node.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The node answered with a gRPC status. Retryable for UNAVAILABLE, RESOURCE_EXHAUSTED,
    /// DEADLINE_EXCEEDED, ABORTED, INTERNAL and UNKNOWN; not for validation errors.
    #[error("node returned {code:?}: {message}", code = .0.code(), message = .0.message())]
    Status(tonic::Status),
    /// The endpoint URL is invalid. Not retryable.
    #[error("invalid node endpoint: {0}")]
    Endpoint(#[source] tonic::transport::Error),
    /// The v3 node no longer takes this call: XMTP moved the network to d14n. Not retryable;
    /// configure a d14n gateway (`D14nTransport`) instead.
    #[error(
        "the XMTP v3 network no longer accepts this ({0}); configure XMTP's decentralized \
         network (d14n): a gateway URL and one of the networks testnet-dev, testnet-staging, \
         testnet or mainnet"
    )]
    V3Retired(String),
    /// d14n: the gateway listed no node, or none answered its health check. Retryable.
    #[error("no d14n node to read from: {0}")]
    NoNode(String),
    /// d14n: an envelope or payload that cannot be built or read. Not retryable.
    #[error("d14n envelope: {0}")]
    Envelope(String),
}

/// What libxmtp 1.10 matches to detect the v3 cutover (`D14N_MIGRATION_MSG_REGEX`).
const V3_RETIRED_MARKERS: [&str; 2] = [
    "publishing to XMTP V3 is no longer available",
    "XMTP V3 streaming is no longer available",
];

impl From<tonic::Status> for TransportError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message();
        if V3_RETIRED_MARKERS.iter().any(|m| message.contains(m)) {
            TransportError::V3Retired(message.to_owned())
        } else {
            TransportError::Status(status)
        }
    }
}

impl TransportError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Status(s) => matches!(
                s.code(),
                Code::Unavailable
                    | Code::ResourceExhausted
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::Internal
                    | Code::Unknown
                    | Code::Cancelled
            ),
            TransportError::NoNode(_) => true,
            TransportError::Endpoint(_)
            | TransportError::V3Retired(_)
            | TransportError::Envelope(_) => false,
        }
    }
}

/// The IdentityApi and MlsApi calls a sending client makes.
#[async_trait]
pub trait Transport: Send + Sync {
    /// `IdentityApi/GetInboxIds`.
    async fn get_inbox_ids(
        &self,
        req: GetInboxIdsRequest,
    ) -> Result<GetInboxIdsResponse, TransportError>;
    /// `IdentityApi/GetIdentityUpdates`.
    async fn get_identity_updates(
        &self,
        req: GetIdentityUpdatesRequest,
    ) -> Result<GetIdentityUpdatesResponse, TransportError>;
    /// `IdentityApi/PublishIdentityUpdate`.
    async fn publish_identity_update(
        &self,
        req: PublishIdentityUpdateRequest,
    ) -> Result<(), TransportError>;
    /// `MlsApi/UploadKeyPackage`.
    async fn upload_key_package(&self, req: UploadKeyPackageRequest) -> Result<(), TransportError>;
    /// `MlsApi/FetchKeyPackages`.
    async fn fetch_key_packages(
        &self,
        req: FetchKeyPackagesRequest,
    ) -> Result<FetchKeyPackagesResponse, TransportError>;
    /// `MlsApi/SendGroupMessages`.
    async fn send_group_messages(
        &self,
        req: SendGroupMessagesRequest,
    ) -> Result<(), TransportError>;
    /// `MlsApi/SendWelcomeMessages`.
    async fn send_welcome_messages(
        &self,
        req: SendWelcomeMessagesRequest,
    ) -> Result<(), TransportError>;
    /// `MlsApi/QueryGroupMessages`.
    async fn query_group_messages(
        &self,
        req: QueryGroupMessagesRequest,
    ) -> Result<QueryGroupMessagesResponse, TransportError>;
    /// `MlsApi/QueryWelcomeMessages`.
    async fn query_welcome_messages(
        &self,
        req: QueryWelcomeMessagesRequest,
    ) -> Result<QueryWelcomeMessagesResponse, TransportError>;
}

/// [`Transport`] over tonic. `http://` URLs use cleartext HTTP/2 (h2c), as the local node
/// and the SDK's `env: local` do. Cloning shares one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct GrpcTransport {
    identity: IdentityApiClient<Channel>,
    mls: MlsApiClient<Channel>,
}

impl GrpcTransport {
    /// A transport that connects lazily to `url` on first use.
    pub fn connect_lazy(url: &str) -> Result<Self, TransportError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(TransportError::Endpoint)?
            .timeout(std::time::Duration::from_secs(120))
            .connect_lazy();
        Ok(Self {
            identity: IdentityApiClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            mls: MlsApiClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        })
    }
}

#[async_trait]
impl Transport for GrpcTransport {
    async fn get_inbox_ids(
        &self,
        req: GetInboxIdsRequest,
    ) -> Result<GetInboxIdsResponse, TransportError> {
        Ok(self.identity.clone().get_inbox_ids(req).await?.into_inner())
    }

    async fn get_identity_updates(
        &self,
        req: GetIdentityUpdatesRequest,
    ) -> Result<GetIdentityUpdatesResponse, TransportError> {
        Ok(self
            .identity
            .clone()
            .get_identity_updates(req)
            .await?
            .into_inner())
    }

    async fn publish_identity_update(
        &self,
        req: PublishIdentityUpdateRequest,
    ) -> Result<(), TransportError> {
        self.identity.clone().publish_identity_update(req).await?;
        Ok(())
    }

    async fn upload_key_package(&self, req: UploadKeyPackageRequest) -> Result<(), TransportError> {
        self.mls.clone().upload_key_package(req).await?;
        Ok(())
    }

    async fn fetch_key_packages(
        &self,
        req: FetchKeyPackagesRequest,
    ) -> Result<FetchKeyPackagesResponse, TransportError> {
        Ok(self.mls.clone().fetch_key_packages(req).await?.into_inner())
    }

    async fn send_group_messages(
        &self,
        req: SendGroupMessagesRequest,
    ) -> Result<(), TransportError> {
        self.mls.clone().send_group_messages(req).await?;
        Ok(())
    }

    async fn send_welcome_messages(
        &self,
        req: SendWelcomeMessagesRequest,
    ) -> Result<(), TransportError> {
        self.mls.clone().send_welcome_messages(req).await?;
        Ok(())
    }

    async fn query_group_messages(
        &self,
        req: QueryGroupMessagesRequest,
    ) -> Result<QueryGroupMessagesResponse, TransportError> {
        Ok(self
            .mls
            .clone()
            .query_group_messages(req)
            .await?
            .into_inner())
    }

    async fn query_welcome_messages(
        &self,
        req: QueryWelcomeMessagesRequest,
    ) -> Result<QueryWelcomeMessagesResponse, TransportError> {
        Ok(self
            .mls
            .clone()
            .query_welcome_messages(req)
            .await?
            .into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classes() {
        let s = |c| TransportError::Status(tonic::Status::new(c, "x"));
        assert!(s(Code::Unavailable).is_retryable());
        assert!(s(Code::ResourceExhausted).is_retryable());
        assert!(s(Code::DeadlineExceeded).is_retryable());
        assert!(!s(Code::InvalidArgument).is_retryable());
        assert!(!s(Code::PermissionDenied).is_retryable());
    }

    #[test]
    fn the_v3_cutover_refusal_is_its_own_non_retryable_error() {
        let status = tonic::Status::unavailable(
            "publishing to XMTP V3 is no longer available. Please upgrade your client to XMTP D14N.",
        );
        let e = TransportError::from(status);
        assert!(matches!(e, TransportError::V3Retired(_)), "{e:?}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("gateway"), "{e}");
        let streams = tonic::Status::unavailable(
            "XMTP V3 streaming is no longer available. Please upgrade your client to XMTP D14N.",
        );
        assert!(matches!(
            TransportError::from(streams),
            TransportError::V3Retired(_)
        ));
        let other = TransportError::from(tonic::Status::unavailable("busy"));
        assert!(matches!(other, TransportError::Status(_)) && other.is_retryable());
    }
}
