//! `xmtp.mls.api.v1.MlsApi` (unary methods; the two subscriptions are in `subscribe`).

use tonic::{Request, Response, Status};
use xmtp_proto::mls_api::mls_api_server::MlsApi;
use xmtp_proto::mls_api::{
    fetch_key_packages_response, get_newest_group_message_response, group_message,
    group_message_input, welcome_message, welcome_message_input, BatchPublishCommitLogRequest,
    BatchQueryCommitLogRequest, BatchQueryCommitLogResponse, FetchKeyPackagesRequest,
    FetchKeyPackagesResponse, GetIdentityUpdatesRequest, GetIdentityUpdatesResponse,
    GetNewestGroupMessageRequest, GetNewestGroupMessageResponse, GroupMessage,
    QueryCommitLogResponse, QueryGroupMessagesRequest, QueryGroupMessagesResponse,
    QueryWelcomeMessagesRequest, QueryWelcomeMessagesResponse, RegisterInstallationRequest,
    RegisterInstallationResponse, RevokeInstallationRequest, SendGroupMessagesRequest,
    SendWelcomeMessagesRequest, SubscribeGroupMessagesRequest, SubscribeWelcomeMessagesRequest,
    UploadKeyPackageRequest,
};
use xmtp_proto::mls_contents::{
    CommitLogEntry, WelcomePointerWrapperAlgorithm, WelcomeWrapperAlgorithm,
};

use super::subscribe::{self, MessageStream};
use super::Node;
use crate::mls_wire::{parse_group_message, validate_key_package};

/// xmtp-node-go's batch limits for the commit-log endpoints.
const MAX_COMMIT_LOG_PUBLISH: usize = 10;
const MAX_COMMIT_LOG_QUERY: usize = 20;

#[tonic::async_trait]
impl MlsApi for Node {
    /// Validates every message's MLS header first, then stores them all with fresh ids;
    /// `is_commit` comes from the header, not from the client.
    async fn send_group_messages(
        &self,
        request: Request<SendGroupMessagesRequest>,
    ) -> Result<Response<()>, Status> {
        self.charge(&request, request.get_ref().messages.len())?;
        let mut batch = Vec::new();
        for input in request.into_inner().messages {
            let Some(group_message_input::Version::V1(v1)) = input.version else {
                return Err(Status::invalid_argument("group message without v1"));
            };
            let header = parse_group_message(&v1.data).map_err(|e| {
                tracing::info!(error = %e, "rejected group message");
                Status::invalid_argument(format!("invalid group message: {e}"))
            })?;
            batch.push(group_message::V1 {
                id: 0,
                created_ns: 0,
                group_id: header.group_id,
                data: v1.data,
                sender_hmac: v1.sender_hmac,
                should_push: v1.should_push,
                is_commit: header.is_commit,
            });
        }
        let ticket = self.store.add_group_messages(batch);
        self.durable(ticket).await?;
        Ok(Response::new(()))
    }

    async fn send_welcome_messages(
        &self,
        request: Request<SendWelcomeMessagesRequest>,
    ) -> Result<Response<()>, Status> {
        self.charge(&request, request.get_ref().messages.len())?;
        let batch = request
            .into_inner()
            .messages
            .into_iter()
            .map(|m| welcome_version(m.version))
            .collect::<Result<Vec<_>, _>>()?;
        let ticket = self.store.add_welcomes(batch);
        self.durable(ticket).await?;
        Ok(Response::new(()))
    }

    async fn register_installation(
        &self,
        _request: Request<RegisterInstallationRequest>,
    ) -> Result<Response<RegisterInstallationResponse>, Status> {
        Err(Status::unimplemented(
            "RegisterInstallation is deprecated; use UploadKeyPackage",
        ))
    }

    /// Validates the key package and stores it under its leaf signature key (the
    /// installation key); the latest upload wins.
    async fn upload_key_package(
        &self,
        request: Request<UploadKeyPackageRequest>,
    ) -> Result<Response<()>, Status> {
        self.charge(&request, 1)?;
        let kp = request
            .into_inner()
            .key_package
            .ok_or_else(|| Status::invalid_argument("missing key_package"))?
            .key_package_tls_serialized;
        let info = validate_key_package(&kp).map_err(|e| {
            tracing::info!(error = %e, "rejected key package");
            Status::invalid_argument(format!("invalid key package: {e}"))
        })?;
        let ticket = self.store.put_key_package(info.installation_key, kp);
        self.durable(ticket).await?;
        Ok(Response::new(()))
    }

    async fn fetch_key_packages(
        &self,
        request: Request<FetchKeyPackagesRequest>,
    ) -> Result<Response<FetchKeyPackagesResponse>, Status> {
        let key_packages = self
            .store
            .key_packages(&request.into_inner().installation_keys)
            .into_iter()
            .map(|kp| fetch_key_packages_response::KeyPackage {
                key_package_tls_serialized: kp,
            })
            .collect();
        Ok(Response::new(FetchKeyPackagesResponse { key_packages }))
    }

    async fn revoke_installation(
        &self,
        _request: Request<RevokeInstallationRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented(
            "RevokeInstallation is deprecated; publish an identity update",
        ))
    }

    async fn get_identity_updates(
        &self,
        _request: Request<GetIdentityUpdatesRequest>,
    ) -> Result<Response<GetIdentityUpdatesResponse>, Status> {
        Err(Status::unimplemented(
            "use xmtp.identity.api.v1.IdentityApi/GetIdentityUpdates",
        ))
    }

    async fn query_group_messages(
        &self,
        request: Request<QueryGroupMessagesRequest>,
    ) -> Result<Response<QueryGroupMessagesResponse>, Status> {
        let r = request.into_inner();
        let (messages, paging_info) = self.store.query_group(&r.group_id, r.paging_info.as_ref());
        Ok(Response::new(QueryGroupMessagesResponse {
            messages,
            paging_info: Some(paging_info),
        }))
    }

    async fn query_welcome_messages(
        &self,
        request: Request<QueryWelcomeMessagesRequest>,
    ) -> Result<Response<QueryWelcomeMessagesResponse>, Status> {
        let r = request.into_inner();
        let (messages, paging_info) = self
            .store
            .query_welcomes(&r.installation_key, r.paging_info.as_ref());
        Ok(Response::new(QueryWelcomeMessagesResponse {
            messages,
            paging_info: Some(paging_info),
        }))
    }

    type SubscribeGroupMessagesStream = MessageStream<GroupMessage>;

    async fn subscribe_group_messages(
        &self,
        request: Request<SubscribeGroupMessagesRequest>,
    ) -> Result<Response<Self::SubscribeGroupMessagesStream>, Status> {
        let filters = request
            .into_inner()
            .filters
            .into_iter()
            .map(|f| (f.group_id, f.id_cursor))
            .collect();
        Ok(Response::new(subscribe::groups(
            self.store.clone(),
            filters,
        )))
    }

    type SubscribeWelcomeMessagesStream = MessageStream<xmtp_proto::mls_api::WelcomeMessage>;

    async fn subscribe_welcome_messages(
        &self,
        request: Request<SubscribeWelcomeMessagesRequest>,
    ) -> Result<Response<Self::SubscribeWelcomeMessagesStream>, Status> {
        let filters: Vec<_> = request
            .into_inner()
            .filters
            .into_iter()
            .map(|f| (f.installation_key, f.id_cursor))
            .collect();
        if filters.is_empty() || filters.iter().any(|(key, _)| key.is_empty()) {
            return Err(Status::invalid_argument(
                "welcome subscriptions need installation keys",
            ));
        }
        Ok(Response::new(subscribe::welcomes(
            self.store.clone(),
            filters,
        )))
    }

    async fn batch_publish_commit_log(
        &self,
        request: Request<BatchPublishCommitLogRequest>,
    ) -> Result<Response<()>, Status> {
        self.charge(&request, 1)?;
        let requests = request.into_inner().requests;
        if requests.len() > MAX_COMMIT_LOG_PUBLISH {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_COMMIT_LOG_PUBLISH} commit log entries per call"
            )));
        }
        let mut entries = Vec::with_capacity(requests.len());
        for r in requests {
            if r.group_id.is_empty()
                || r.serialized_commit_log_entry.is_empty()
                || r.signature.is_none()
            {
                return Err(Status::invalid_argument(
                    "commit log entry needs group_id, entry and signature",
                ));
            }
            let entry = CommitLogEntry {
                sequence_id: 0,
                serialized_commit_log_entry: r.serialized_commit_log_entry,
                signature: r.signature,
            };
            entries.push((r.group_id, entry));
        }
        let ticket = self.store.add_commit_log(entries);
        self.durable(ticket).await?;
        Ok(Response::new(()))
    }

    async fn batch_query_commit_log(
        &self,
        request: Request<BatchQueryCommitLogRequest>,
    ) -> Result<Response<BatchQueryCommitLogResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.len() > MAX_COMMIT_LOG_QUERY {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_COMMIT_LOG_QUERY} commit log queries per call"
            )));
        }
        let responses = requests
            .into_iter()
            .map(|r| {
                let (commit_log_entries, paging) = self
                    .store
                    .query_commit_log(&r.group_id, r.paging_info.as_ref());
                QueryCommitLogResponse {
                    group_id: r.group_id,
                    commit_log_entries,
                    paging_info: Some(paging),
                }
            })
            .collect();
        Ok(Response::new(BatchQueryCommitLogResponse { responses }))
    }

    /// One answer per group id, in request order; without `include_content` the payload
    /// (data and sender_hmac) is left out.
    async fn get_newest_group_message(
        &self,
        request: Request<GetNewestGroupMessageRequest>,
    ) -> Result<Response<GetNewestGroupMessageResponse>, Status> {
        let r = request.into_inner();
        let responses = r
            .group_ids
            .iter()
            .map(|g| {
                let mut message = self.store.newest_group_message(g);
                if let (
                    false,
                    Some(GroupMessage {
                        version: Some(group_message::Version::V1(v)),
                    }),
                ) = (r.include_content, message.as_mut())
                {
                    v.data.clear();
                    v.sender_hmac.clear();
                }
                get_newest_group_message_response::Response {
                    group_message: message,
                }
            })
            .collect();
        Ok(Response::new(GetNewestGroupMessageResponse { responses }))
    }
}

/// Checks a welcome input like xmtp-node-go and turns it into the stored form.
fn welcome_version(
    input: Option<welcome_message_input::Version>,
) -> Result<welcome_message::Version, Status> {
    match input {
        Some(welcome_message_input::Version::V1(v)) => {
            let symmetric = v.wrapper_algorithm == WelcomeWrapperAlgorithm::SymmetricKey as i32;
            if v.data.is_empty()
                || v.installation_key.is_empty()
                || (v.hpke_public_key.is_empty() && !symmetric)
            {
                return Err(Status::invalid_argument(
                    "welcome needs data, installation_key and hpke_public_key",
                ));
            }
            Ok(welcome_message::Version::V1(welcome_message::V1 {
                id: 0,
                created_ns: 0,
                installation_key: v.installation_key,
                data: v.data,
                hpke_public_key: v.hpke_public_key,
                wrapper_algorithm: v.wrapper_algorithm,
                welcome_metadata: v.welcome_metadata,
            }))
        }
        Some(welcome_message_input::Version::WelcomePointer(p)) => {
            if p.installation_key.is_empty()
                || p.welcome_pointer.is_empty()
                || p.hpke_public_key.is_empty()
            {
                return Err(Status::invalid_argument(
                    "welcome pointer needs installation_key, welcome_pointer and hpke_public_key",
                ));
            }
            if p.wrapper_algorithm != WelcomePointerWrapperAlgorithm::XwingMlkem768Draft6 as i32 {
                return Err(Status::invalid_argument(
                    "welcome pointers must be wrapped with X-Wing",
                ));
            }
            Ok(welcome_message::Version::WelcomePointer(
                welcome_message::WelcomePointer {
                    id: 0,
                    created_ns: 0,
                    installation_key: p.installation_key,
                    welcome_pointer: p.welcome_pointer,
                    hpke_public_key: p.hpke_public_key,
                    wrapper_algorithm: p.wrapper_algorithm,
                },
            ))
        }
        None => Err(Status::invalid_argument(
            "welcome message without a version",
        )),
    }
}
