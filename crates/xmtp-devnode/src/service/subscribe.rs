//! Server-streaming subscriptions with xmtp-node-go's semantics.
//!
//! The handler returns at once (so the client gets response headers immediately), after
//! registering on the live feed. A task then replays, for each filter, everything stored
//! after the filter's cursor (also for cursor 0), and then forwards live messages. A
//! per-topic high-water mark drops anything already sent, so each id reaches the client
//! once and ids rise per topic. A subscriber that falls too far behind the live feed
//! re-reads from the store from its high-water marks, so nothing is lost either.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use xmtp_proto::mls_api::{
    group_message, welcome_message, GroupMessage, PagingInfo, SortDirection, WelcomeMessage,
};

use crate::store::paging::MAX_PAGE;
use crate::store::{group_id_of, welcome_id_of, Store};

/// The stream type of both subscriptions.
pub type MessageStream<T> = ReceiverStream<Result<T, Status>>;

/// Messages buffered per subscriber before the feeding task waits for the client.
const STREAM_BUFFER: usize = 256;

/// A stored message with a topic (group id or installation key) and an id.
trait Topical: Clone + Send + Sync + 'static {
    fn topic(&self) -> &[u8];
    fn id(&self) -> u64;
}

impl Topical for GroupMessage {
    fn topic(&self) -> &[u8] {
        match &self.version {
            Some(group_message::Version::V1(v)) => &v.group_id,
            None => &[],
        }
    }
    fn id(&self) -> u64 {
        group_id_of(self)
    }
}

impl Topical for WelcomeMessage {
    fn topic(&self) -> &[u8] {
        match &self.version {
            Some(welcome_message::Version::V1(v)) => &v.installation_key,
            Some(welcome_message::Version::WelcomePointer(p)) => &p.installation_key,
            None => &[],
        }
    }
    fn id(&self) -> u64 {
        welcome_id_of(self)
    }
}

fn ascending_after(cursor: u64) -> PagingInfo {
    PagingInfo {
        direction: SortDirection::Ascending as i32,
        limit: MAX_PAGE as u32,
        id_cursor: cursor,
    }
}

/// Streams the group messages of `filters` (group id, cursor).
pub fn groups(store: Arc<Store>, filters: Vec<(Vec<u8>, u64)>) -> MessageStream<GroupMessage> {
    let (live, closing) = (store.live_groups(), store.closing());
    feed(filters, live, closing, move |topic, cursor| {
        store.query_group(topic, Some(&ascending_after(cursor))).0
    })
}

/// Streams the welcomes of `filters` (installation key, cursor).
pub fn welcomes(store: Arc<Store>, filters: Vec<(Vec<u8>, u64)>) -> MessageStream<WelcomeMessage> {
    let (live, closing) = (store.live_welcomes(), store.closing());
    feed(filters, live, closing, move |topic, cursor| {
        store
            .query_welcomes(topic, Some(&ascending_after(cursor)))
            .0
    })
}

fn feed<T, Q>(
    filters: Vec<(Vec<u8>, u64)>,
    mut live: broadcast::Receiver<Arc<T>>,
    mut closing: watch::Receiver<bool>,
    query: Q,
) -> MessageStream<T>
where
    T: Topical,
    Q: Fn(&[u8], u64) -> Vec<T> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        // The same topic twice: replay from the lower cursor.
        let mut marks: HashMap<Vec<u8>, u64> = HashMap::new();
        for (topic, cursor) in filters {
            marks
                .entry(topic)
                .and_modify(|m| *m = (*m).min(cursor))
                .or_insert(cursor);
        }
        if catch_up(&mut marks, &query, &tx).await.is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                _ = tx.closed() => return,
                _ = closing.wait_for(|c| *c) => return,
                r = live.recv() => r,
            };
            let sent = match received {
                Ok(m) => forward(&mut marks, m.as_ref(), &tx).await,
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "subscriber lagged; re-reading from the store");
                    catch_up(&mut marks, &query, &tx).await
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if sent.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Error means the client went away.
struct Gone;

async fn forward<T: Topical>(
    marks: &mut HashMap<Vec<u8>, u64>,
    m: &T,
    tx: &mpsc::Sender<Result<T, Status>>,
) -> Result<(), Gone> {
    match marks.get_mut(m.topic()) {
        Some(mark) if m.id() > *mark => {
            *mark = m.id();
            tx.send(Ok(m.clone())).await.map_err(|_| Gone)
        }
        _ => Ok(()),
    }
}

async fn catch_up<T, Q>(
    marks: &mut HashMap<Vec<u8>, u64>,
    query: &Q,
    tx: &mpsc::Sender<Result<T, Status>>,
) -> Result<(), Gone>
where
    T: Topical,
    Q: Fn(&[u8], u64) -> Vec<T> + Sync,
{
    let topics: Vec<Vec<u8>> = marks.keys().cloned().collect();
    for topic in topics {
        loop {
            let page = query(&topic, marks[&topic]);
            let full = page.len() == MAX_PAGE;
            for m in &page {
                forward(marks, m, tx).await?;
            }
            if !full {
                break;
            }
        }
    }
    Ok(())
}
