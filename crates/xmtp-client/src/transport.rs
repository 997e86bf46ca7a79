//! The node API the client needs, as a trait, and its tonic (gRPC over h2c or TLS)
//! implementation for the v3 API; connections are opened by [`connect`]; [`d14n`] implements
//! the trait over XMTP's decentralized network.
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

pub mod connect;
pub mod d14n;
mod subscribe;
pub use connect::{ConnectProblem, TlsOptions};
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
    /// The URL or the TLS settings cannot be used (scheme, CA file). Not retryable.
    #[error("XMTP network settings: {0}")]
    Config(String),
    /// No connection to the node could be opened; the problem names the cause and its fix.
    /// Retryable when the cause may pass by itself (refused, DNS, timeout), not for TLS or
    /// scheme mismatches.
    #[error("{0} (fix: {fix})", fix = .0.fix())]
    Connect(ConnectProblem),
    /// The node does not serve this API (UNIMPLEMENTED): not an XMTP v3 node, or the wrong
    /// port. Not retryable.
    #[error("the node at this URL does not serve {method} (UNIMPLEMENTED): check that xmtp.network points at an XMTP v3 gRPC endpoint")]
    Unsupported { method: &'static str },
    /// The v3 network refuses writes because it moved to the decentralized network. Not
    /// retryable: the configuration has to change.
    #[error(
        "the XMTP v3 network no longer accepts this ({0}); configure XMTP's decentralized \
         network (d14n): xmtp.network = testnet, testnet-staging, testnet-dev, or mainnet with \
         xmtp.gateway_url"
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
            TransportError::Connect(p) => p.is_retryable(),
            TransportError::NoNode(_) => true,
            TransportError::Endpoint(_)
            | TransportError::Envelope(_)
            | TransportError::Config(_)
            | TransportError::Unsupported { .. }
            | TransportError::V3Retired(_) => false,
        }
    }

    /// Classifies a failed call's status: a connection problem recorded by the connector, an
    /// API the node does not serve, the v3 retirement notice, or the status as it is.
    pub fn from_call(
        method: &'static str,
        status: tonic::Status,
        problems: &connect::ProblemSlot,
    ) -> Self {
        match status.code() {
            _ if V3_RETIRED_MARKERS
                .iter()
                .any(|m| status.message().contains(m)) =>
            {
                TransportError::V3Retired(status.message().to_owned())
            }
            Code::Unavailable | Code::Unknown | Code::Cancelled => match problems.get() {
                Some(problem) => TransportError::Connect(problem),
                // A status with a source came from our side of the connection (hyper/h2),
                // not from the node; on cleartext that is typically a TLS port hanging up.
                None if problems.cleartext_addr().is_some()
                    && std::error::Error::source(&status).is_some() =>
                {
                    TransportError::Connect(ConnectProblem::Dropped {
                        addr: problems.cleartext_addr().unwrap_or_default(),
                    })
                }
                None => TransportError::Status(status),
            },
            Code::Unimplemented => TransportError::Unsupported { method },
            _ => TransportError::Status(status),
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
/// and the SDK's `env: local` do; `https://` URLs use TLS ([`connect`]). Cloning shares one
/// HTTP/2 connection.
#[derive(Clone)]
pub struct GrpcTransport {
    identity: IdentityApiClient<Channel>,
    mls: MlsApiClient<Channel>,
    problems: connect::ProblemSlot,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport").finish_non_exhaustive()
    }
}

/// A lazily connecting tonic channel to `url` (`http://` h2c or `https://` TLS), and the slot
/// where its connector records why a connection failed.
pub fn channel(
    url: &str,
    tls: &TlsOptions,
) -> Result<(Channel, connect::ProblemSlot), TransportError> {
    let connector = connect::Connector::new(url, tls).map_err(TransportError::Config)?;
    let problems = connector.problems();
    // Our connector does TLS itself; tonic refuses an `https` endpoint without its own TLS
    // config, so it is handed the `http` form to connect to, and requests keep the real
    // origin (`:scheme https`).
    let origin: tonic::codegen::http::Uri = url
        .parse()
        .map_err(|e| TransportError::Config(format!("{url:?}: {e}")))?;
    let dial = match url.strip_prefix("https://") {
        Some(rest) => format!("http://{rest}"),
        None => url.to_owned(),
    };
    let channel = Endpoint::from_shared(dial)
        .map_err(TransportError::Endpoint)?
        .origin(origin)
        .timeout(std::time::Duration::from_secs(120))
        .connect_with_connector_lazy(connector);
    Ok((channel, problems))
}

impl GrpcTransport {
    /// A transport that connects lazily to `url` on first use, trusting the usual TLS roots.
    pub fn connect_lazy(url: &str) -> Result<Self, TransportError> {
        Self::connect_lazy_with(url, &TlsOptions::default())
    }

    /// A transport that connects lazily to `url` on first use with these TLS settings.
    pub fn connect_lazy_with(url: &str, tls: &TlsOptions) -> Result<Self, TransportError> {
        let (channel, problems) = channel(url, tls)?;
        Ok(Self {
            problems,
            identity: IdentityApiClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            mls: MlsApiClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        })
    }
}

impl GrpcTransport {
    /// Why a call named `method` failed ([`TransportError::from_call`]).
    fn fail(&self, method: &'static str) -> impl FnOnce(tonic::Status) -> TransportError + '_ {
        move |status| TransportError::from_call(method, status, &self.problems)
    }

    /// The last connection failure, if the most recent connect attempt failed.
    pub fn connect_problem(&self) -> Option<ConnectProblem> {
        self.problems.get()
    }
}

#[async_trait]
impl Transport for GrpcTransport {
    async fn get_inbox_ids(
        &self,
        req: GetInboxIdsRequest,
    ) -> Result<GetInboxIdsResponse, TransportError> {
        let call = self.identity.clone().get_inbox_ids(req).await;
        Ok(call
            .map_err(self.fail("IdentityApi/GetInboxIds"))?
            .into_inner())
    }

    async fn get_identity_updates(
        &self,
        req: GetIdentityUpdatesRequest,
    ) -> Result<GetIdentityUpdatesResponse, TransportError> {
        let call = self.identity.clone().get_identity_updates(req).await;
        Ok(call
            .map_err(self.fail("IdentityApi/GetIdentityUpdates"))?
            .into_inner())
    }

    async fn publish_identity_update(
        &self,
        req: PublishIdentityUpdateRequest,
    ) -> Result<(), TransportError> {
        let call = self.identity.clone().publish_identity_update(req).await;
        call.map_err(self.fail("IdentityApi/PublishIdentityUpdate"))?;
        Ok(())
    }

    async fn upload_key_package(&self, req: UploadKeyPackageRequest) -> Result<(), TransportError> {
        let call = self.mls.clone().upload_key_package(req).await;
        call.map_err(self.fail("MlsApi/UploadKeyPackage"))?;
        Ok(())
    }

    async fn fetch_key_packages(
        &self,
        req: FetchKeyPackagesRequest,
    ) -> Result<FetchKeyPackagesResponse, TransportError> {
        let call = self.mls.clone().fetch_key_packages(req).await;
        Ok(call
            .map_err(self.fail("MlsApi/FetchKeyPackages"))?
            .into_inner())
    }

    async fn send_group_messages(
        &self,
        req: SendGroupMessagesRequest,
    ) -> Result<(), TransportError> {
        let call = self.mls.clone().send_group_messages(req).await;
        call.map_err(self.fail("MlsApi/SendGroupMessages"))?;
        Ok(())
    }

    async fn send_welcome_messages(
        &self,
        req: SendWelcomeMessagesRequest,
    ) -> Result<(), TransportError> {
        let call = self.mls.clone().send_welcome_messages(req).await;
        call.map_err(self.fail("MlsApi/SendWelcomeMessages"))?;
        Ok(())
    }

    async fn query_group_messages(
        &self,
        req: QueryGroupMessagesRequest,
    ) -> Result<QueryGroupMessagesResponse, TransportError> {
        let call = self.mls.clone().query_group_messages(req).await;
        Ok(call
            .map_err(self.fail("MlsApi/QueryGroupMessages"))?
            .into_inner())
    }

    async fn query_welcome_messages(
        &self,
        req: QueryWelcomeMessagesRequest,
    ) -> Result<QueryWelcomeMessagesResponse, TransportError> {
        let call = self.mls.clone().query_welcome_messages(req).await;
        Ok(call
            .map_err(self.fail("MlsApi/QueryWelcomeMessages"))?
            .into_inner())
    }
}

#[cfg(test)]
mod tests;
