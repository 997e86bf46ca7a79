//! Server streams of the node on [`GrpcTransport`]: a reader learns within moments that a
//! topic (a group, or an installation's welcomes) received something.

use futures::StreamExt as _;
use xmtp_proto::mls_api::subscribe_group_messages_request::Filter as GroupFilter;
use xmtp_proto::mls_api::subscribe_welcome_messages_request::Filter as WelcomeFilter;
use xmtp_proto::mls_api::{
    group_message, welcome_message, SubscribeGroupMessagesRequest, SubscribeWelcomeMessagesRequest,
};

use super::{GrpcTransport, TransportError};

/// What a subscription yields per stored message: (topic, message id). The topic is the group
/// id or the installation key the message arrived on.
pub type TopicStream = futures::stream::BoxStream<'static, Result<(Vec<u8>, u64), TransportError>>;

/// A group message seen on a group stream.
#[derive(Debug, Clone)]
pub struct GroupArrival {
    pub group_id: Vec<u8>,
    /// Node id (the reconnect cursor).
    pub id: u64,
    /// Ciphertext, for recognising a sender tag ([`crate::sender_tag`]); not decrypted.
    pub data: Vec<u8>,
    pub sender_hmac: Vec<u8>,
}

/// What a group subscription yields.
pub type GroupStream = futures::stream::BoxStream<'static, Result<GroupArrival, TransportError>>;

/// Server streams (`SubscribeWelcomeMessages`, `SubscribeGroupMessages`): a reader learns within
/// moments that a topic received something, and reads it with the client's usual sync. Each
/// filter is (topic, id cursor): the node first replays what is stored after the cursor, then
/// forwards live messages. Inherent to the tonic transport (not on [`super::Transport`]), so other
/// implementations need not stream.
impl GrpcTransport {
    /// Follows the welcome topics (installation keys) in `filters`.
    pub async fn subscribe_welcomes(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<TopicStream, TransportError> {
        let filters = filters
            .into_iter()
            .map(|(installation_key, id_cursor)| WelcomeFilter {
                installation_key,
                id_cursor,
            })
            .collect();
        let req = SubscribeWelcomeMessagesRequest { filters };
        let call = self.mls.clone().subscribe_welcome_messages(req).await;
        let stream = call.map_err(self.fail("MlsApi/SubscribeWelcomeMessages"))?;
        Ok(stream
            .into_inner()
            .map(|m| {
                Ok(match m?.version {
                    Some(welcome_message::Version::V1(v)) => (v.installation_key, v.id),
                    Some(welcome_message::Version::WelcomePointer(p)) => (p.installation_key, p.id),
                    None => (Vec::new(), 0),
                })
            })
            .boxed())
    }

    /// Follows the group topics (group ids) in `filters`.
    pub async fn subscribe_groups(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<GroupStream, TransportError> {
        let filters = filters
            .into_iter()
            .map(|(group_id, id_cursor)| GroupFilter {
                group_id,
                id_cursor,
            })
            .collect();
        let req = SubscribeGroupMessagesRequest { filters };
        let call = self.mls.clone().subscribe_group_messages(req).await;
        let stream = call.map_err(self.fail("MlsApi/SubscribeGroupMessages"))?;
        Ok(stream
            .into_inner()
            .map(|m| {
                Ok(match m?.version {
                    Some(group_message::Version::V1(v)) => GroupArrival {
                        group_id: v.group_id,
                        id: v.id,
                        data: v.data,
                        sender_hmac: v.sender_hmac,
                    },
                    None => GroupArrival {
                        group_id: Vec::new(),
                        id: 0,
                        data: Vec::new(),
                        sender_hmac: Vec::new(),
                    },
                })
            })
            .boxed())
    }
}

/// The two server streams, whichever network API serves them: [`GrpcTransport`] (v3) and
/// [`super::D14nTransport`] (d14n) both implement it, so a watcher can hold either.
#[async_trait::async_trait]
pub trait Subscriptions: Send + Sync {
    /// Follows welcome topics: (installation key, id cursor) per filter.
    async fn subscribe_welcomes(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<TopicStream, TransportError>;
    /// Follows group topics: (group id, id cursor) per filter.
    async fn subscribe_groups(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<GroupStream, TransportError>;
}

#[async_trait::async_trait]
impl Subscriptions for GrpcTransport {
    async fn subscribe_welcomes(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<TopicStream, TransportError> {
        GrpcTransport::subscribe_welcomes(self, filters).await
    }

    async fn subscribe_groups(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<GroupStream, TransportError> {
        GrpcTransport::subscribe_groups(self, filters).await
    }
}

#[async_trait::async_trait]
impl Subscriptions for super::D14nTransport {
    async fn subscribe_welcomes(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<TopicStream, TransportError> {
        super::D14nTransport::subscribe_welcomes(self, filters).await
    }

    async fn subscribe_groups(
        &self,
        filters: Vec<(Vec<u8>, u64)>,
    ) -> Result<GroupStream, TransportError> {
        super::D14nTransport::subscribe_groups(self, filters).await
    }
}
