//! `xmtp.identity.api.v1.IdentityApi`.

use tonic::{Request, Response, Status};
use xmtp_proto::identity_api::identity_api_server::IdentityApi;
use xmtp_proto::identity_api::{
    get_identity_updates_response, get_inbox_ids_response,
    verify_smart_contract_wallet_signatures_response::ValidationResponse,
    GetIdentityUpdatesRequest, GetIdentityUpdatesResponse, GetInboxIdsRequest, GetInboxIdsResponse,
    PublishIdentityUpdateRequest, PublishIdentityUpdateResponse,
    VerifySmartContractWalletSignaturesRequest, VerifySmartContractWalletSignaturesResponse,
};

use super::Node;
use crate::store::IdentityError;

/// Sanity bound on lookups per request (libxmtp sends at most 50).
const MAX_IDENTITY_REQUESTS: usize = 50_000;

#[tonic::async_trait]
impl IdentityApi for Node {
    /// Verifies the update against the inbox's log (signatures and association rules) and
    /// appends it; invalid updates get INVALID_ARGUMENT.
    #[tracing::instrument(skip_all, fields(inbox.id))]
    async fn publish_identity_update(
        &self,
        request: Request<PublishIdentityUpdateRequest>,
    ) -> Result<Response<PublishIdentityUpdateResponse>, Status> {
        self.charge(&request, 1)?;
        let update = request
            .into_inner()
            .identity_update
            .ok_or_else(|| Status::invalid_argument("missing identity_update"))?;
        tracing::Span::current().record("inbox.id", update.inbox_id.as_str());
        let ticket = self.store.publish_identity_update(update).map_err(|e| {
            // A client bug, not a node failure: worth a line for whoever debugs the client.
            tracing::info!(error = %e, "rejected identity update");
            match e {
                IdentityError::Invalid(e) => {
                    Status::invalid_argument(format!("invalid identity update: {e}"))
                }
                IdentityError::LogFull(_) => Status::invalid_argument(e.to_string()),
            }
        })?;
        self.durable(ticket).await?;
        Ok(Response::new(PublishIdentityUpdateResponse {}))
    }

    async fn get_identity_updates(
        &self,
        request: Request<GetIdentityUpdatesRequest>,
    ) -> Result<Response<GetIdentityUpdatesResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.len() > MAX_IDENTITY_REQUESTS {
            return Err(Status::invalid_argument("too many requests"));
        }
        let responses = requests
            .into_iter()
            .map(|r| get_identity_updates_response::Response {
                updates: self.store.identity_updates(&r.inbox_id, r.sequence_id),
                inbox_id: r.inbox_id,
            })
            .collect();
        Ok(Response::new(GetIdentityUpdatesResponse { responses }))
    }

    async fn get_inbox_ids(
        &self,
        request: Request<GetInboxIdsRequest>,
    ) -> Result<Response<GetInboxIdsResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.len() > MAX_IDENTITY_REQUESTS {
            return Err(Status::invalid_argument("too many requests"));
        }
        let responses = requests
            .into_iter()
            .map(|r| get_inbox_ids_response::Response {
                inbox_id: self.store.inbox_for_address(&r.identifier),
                identifier: r.identifier,
                identifier_kind: r.identifier_kind,
            })
            .collect();
        Ok(Response::new(GetInboxIdsResponse { responses }))
    }

    /// The node has no chain access, so every smart-contract-wallet signature is reported
    /// invalid with a reason (rather than hanging or failing the whole call).
    async fn verify_smart_contract_wallet_signatures(
        &self,
        request: Request<VerifySmartContractWalletSignaturesRequest>,
    ) -> Result<Response<VerifySmartContractWalletSignaturesResponse>, Status> {
        let responses = request
            .into_inner()
            .signatures
            .iter()
            .map(|_| ValidationResponse {
                is_valid: false,
                block_number: None,
                error: Some("smart-contract wallets are not supported by herald devnode".into()),
            })
            .collect();
        Ok(Response::new(VerifySmartContractWalletSignaturesResponse {
            responses,
        }))
    }
}
