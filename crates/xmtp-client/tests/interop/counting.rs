//! A [`Transport`] wrapper that counts calls per method (to prove batching) and can fail the
//! next call of a method with UNAVAILABLE (to simulate a crash between persist and publish).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use xmtp_client::{Transport, TransportError};
use xmtp_proto::identity_api::{
    GetIdentityUpdatesRequest, GetIdentityUpdatesResponse, GetInboxIdsRequest, GetInboxIdsResponse,
    PublishIdentityUpdateRequest,
};
use xmtp_proto::mls_api::{
    FetchKeyPackagesRequest, FetchKeyPackagesResponse, QueryGroupMessagesRequest,
    QueryGroupMessagesResponse, QueryWelcomeMessagesRequest, QueryWelcomeMessagesResponse,
    SendGroupMessagesRequest, SendWelcomeMessagesRequest, UploadKeyPackageRequest,
};

#[derive(Clone)]
pub struct Counting {
    inner: Arc<dyn Transport>,
    pub calls: Arc<Mutex<HashMap<&'static str, usize>>>,
    fail_next: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            fail_next: Arc::default(),
        }
    }

    /// Fails the next `times` calls of method `m` before they reach the node.
    pub fn fail_next(&self, m: &'static str, times: usize) {
        self.fail_next.lock().unwrap().insert(m, times);
    }

    fn hit(&self, m: &'static str) -> Result<(), TransportError> {
        *self.calls.lock().unwrap().entry(m).or_default() += 1;
        let mut fail = self.fail_next.lock().unwrap();
        match fail.get_mut(m) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(TransportError::Status(tonic::Status::unavailable(
                    "injected failure",
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn count(&self, m: &str) -> usize {
        self.calls.lock().unwrap().get(m).copied().unwrap_or(0)
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }
}

#[async_trait]
impl Transport for Counting {
    async fn get_inbox_ids(
        &self,
        r: GetInboxIdsRequest,
    ) -> Result<GetInboxIdsResponse, TransportError> {
        self.hit("GetInboxIds")?;
        self.inner.get_inbox_ids(r).await
    }
    async fn get_identity_updates(
        &self,
        r: GetIdentityUpdatesRequest,
    ) -> Result<GetIdentityUpdatesResponse, TransportError> {
        self.hit("GetIdentityUpdates")?;
        self.inner.get_identity_updates(r).await
    }
    async fn publish_identity_update(
        &self,
        r: PublishIdentityUpdateRequest,
    ) -> Result<(), TransportError> {
        self.hit("PublishIdentityUpdate")?;
        self.inner.publish_identity_update(r).await
    }
    async fn upload_key_package(&self, r: UploadKeyPackageRequest) -> Result<(), TransportError> {
        self.hit("UploadKeyPackage")?;
        self.inner.upload_key_package(r).await
    }
    async fn fetch_key_packages(
        &self,
        r: FetchKeyPackagesRequest,
    ) -> Result<FetchKeyPackagesResponse, TransportError> {
        self.hit("FetchKeyPackages")?;
        self.inner.fetch_key_packages(r).await
    }
    async fn send_group_messages(&self, r: SendGroupMessagesRequest) -> Result<(), TransportError> {
        self.hit("SendGroupMessages")?;
        self.inner.send_group_messages(r).await
    }
    async fn send_welcome_messages(
        &self,
        r: SendWelcomeMessagesRequest,
    ) -> Result<(), TransportError> {
        self.hit("SendWelcomeMessages")?;
        self.inner.send_welcome_messages(r).await
    }
    async fn query_group_messages(
        &self,
        r: QueryGroupMessagesRequest,
    ) -> Result<QueryGroupMessagesResponse, TransportError> {
        self.hit("QueryGroupMessages")?;
        self.inner.query_group_messages(r).await
    }
    async fn query_welcome_messages(
        &self,
        r: QueryWelcomeMessagesRequest,
    ) -> Result<QueryWelcomeMessagesResponse, TransportError> {
        self.hit("QueryWelcomeMessages")?;
        self.inner.query_welcome_messages(r).await
    }
}
