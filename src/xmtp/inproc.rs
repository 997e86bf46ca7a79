//! The embedded node called in-process: herald's sends go straight to the node's request
//! handlers instead of through gRPC over loopback HTTP/2 (same handlers, same validation, no
//! encoding, framing or socket hop). Only for the embedded v3 node without TLS (an operator
//! who turns TLS on for it keeps the network path, which is what they asked to exercise);
//! subscriptions still use the network stream. `xmtp.embedded_in_process = false` turns it
//! off.

use async_trait::async_trait;
use tonic::Request;
use xmtp_client::{Transport, TransportError};
use xmtp_devnode::Node;
use xmtp_proto::identity_api::identity_api_server::IdentityApi;
use xmtp_proto::identity_api::{
    GetIdentityUpdatesRequest, GetIdentityUpdatesResponse, GetInboxIdsRequest, GetInboxIdsResponse,
    PublishIdentityUpdateRequest,
};
use xmtp_proto::mls_api::mls_api_server::MlsApi;
use xmtp_proto::mls_api::{
    FetchKeyPackagesRequest, FetchKeyPackagesResponse, QueryGroupMessagesRequest,
    QueryGroupMessagesResponse, QueryWelcomeMessagesRequest, QueryWelcomeMessagesResponse,
    SendGroupMessagesRequest, SendWelcomeMessagesRequest, UploadKeyPackageRequest,
};

/// [`Transport`] over the embedded node's handlers.
#[derive(Clone)]
pub struct InProcessTransport {
    node: Node,
}

impl InProcessTransport {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

impl std::fmt::Debug for InProcessTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessTransport").finish_non_exhaustive()
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn get_inbox_ids(
        &self,
        req: GetInboxIdsRequest,
    ) -> Result<GetInboxIdsResponse, TransportError> {
        Ok(IdentityApi::get_inbox_ids(&self.node, Request::new(req))
            .await?
            .into_inner())
    }

    async fn get_identity_updates(
        &self,
        req: GetIdentityUpdatesRequest,
    ) -> Result<GetIdentityUpdatesResponse, TransportError> {
        Ok(
            IdentityApi::get_identity_updates(&self.node, Request::new(req))
                .await?
                .into_inner(),
        )
    }

    async fn publish_identity_update(
        &self,
        req: PublishIdentityUpdateRequest,
    ) -> Result<(), TransportError> {
        IdentityApi::publish_identity_update(&self.node, Request::new(req)).await?;
        Ok(())
    }

    async fn upload_key_package(&self, req: UploadKeyPackageRequest) -> Result<(), TransportError> {
        MlsApi::upload_key_package(&self.node, Request::new(req)).await?;
        Ok(())
    }

    async fn fetch_key_packages(
        &self,
        req: FetchKeyPackagesRequest,
    ) -> Result<FetchKeyPackagesResponse, TransportError> {
        Ok(MlsApi::fetch_key_packages(&self.node, Request::new(req))
            .await?
            .into_inner())
    }

    async fn send_group_messages(
        &self,
        req: SendGroupMessagesRequest,
    ) -> Result<(), TransportError> {
        MlsApi::send_group_messages(&self.node, Request::new(req)).await?;
        Ok(())
    }

    async fn send_welcome_messages(
        &self,
        req: SendWelcomeMessagesRequest,
    ) -> Result<(), TransportError> {
        MlsApi::send_welcome_messages(&self.node, Request::new(req)).await?;
        Ok(())
    }

    async fn query_group_messages(
        &self,
        req: QueryGroupMessagesRequest,
    ) -> Result<QueryGroupMessagesResponse, TransportError> {
        Ok(MlsApi::query_group_messages(&self.node, Request::new(req))
            .await?
            .into_inner())
    }

    async fn query_welcome_messages(
        &self,
        req: QueryWelcomeMessagesRequest,
    ) -> Result<QueryWelcomeMessagesResponse, TransportError> {
        Ok(
            MlsApi::query_welcome_messages(&self.node, Request::new(req))
                .await?
                .into_inner(),
        )
    }
}
