//! gRPC handlers: `IdentityApi` and `MlsApi` over the shared [`Store`], and the d14n API
//! (`d14n`) over the same store.

pub mod d14n;
mod identity;
mod mls;
mod subscribe;

use std::sync::Arc;

use tonic::{Request, Status};

use crate::ratelimit::RateLimiter;
use crate::store::{Store, StoreError, Ticket};

/// State shared by both services; also what an in-process caller calls the `IdentityApi` /
/// `MlsApi` traits on.
#[derive(Clone)]
pub struct Node {
    store: Arc<Store>,
    limiter: Option<Arc<RateLimiter>>,
}

impl Node {
    pub(crate) fn new(store: Arc<Store>, limiter: Option<Arc<RateLimiter>>) -> Self {
        Self { store, limiter }
    }

    /// Charges `cost` writes (messages) to the caller when the rate limit is on.
    fn charge<T>(&self, request: &Request<T>, cost: usize) -> Result<(), Status> {
        match &self.limiter {
            Some(l) => l.check(request, u32::try_from(cost).unwrap_or(u32::MAX)),
            None => Ok(()),
        }
    }

    /// Acknowledges a write only once it is durable (`--data`).
    async fn durable(&self, ticket: Ticket) -> Result<(), Status> {
        self.store.durable(ticket).await.map_err(|e: StoreError| {
            tracing::error!(error = %e, "write not persisted");
            Status::unavailable("the node could not persist the write")
        })
    }
}
