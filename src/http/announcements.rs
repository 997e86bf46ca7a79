//! Announcements: one text fanned out to a channel's audience, one delivery row per recipient.
//!
//! The handlers live here; the wire types are in `dto`, the ETA shown on reads in `eta`.

mod dto;
mod eta;
mod events;

pub use events::ProgressEvent;
mod schedule;

pub use dto::{
    AddressList, AnnouncementContent, AnnouncementIn, AnnouncementList, AnnouncementOut,
    AnnouncementParams, AudienceIn, AudienceKeyword, CountsOut, DeliveryList, DeliveryOut,
    DeliveryParams, NetworkId, PriorityIn, TransactionMetadataIn,
};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::{check_cursor, check_limit, paginate, AppJson, AppQuery};
use super::subscribers::{partition_addresses, MAX_BATCH};
use super::{idempotency, AppState};
use crate::domain::{Address, AnnouncementId, AnnouncementText, ChannelId, Priority};
use crate::store::{
    Announcement, Audience, Counts, Creation, IdempotencyCompletion, IdempotencyKey,
    NewAnnouncement, Page, StoredResponse,
};

/// Checks the body and turns it into what the store needs (everything but ids).
fn validate(body: AnnouncementIn) -> Result<(String, Priority, Audience), ApiError> {
    let text = AnnouncementText::parse(body.text)
        .map_err(|e| ApiError::validation("invalid_text", e.to_string()))?;
    let priority = body.priority.unwrap_or(PriorityIn::Normal).into();
    let audience = match (body.audience, body.topic) {
        (None | Some(AudienceIn::Keyword(AudienceKeyword::All)), Some(topic)) => {
            if !super::topics::valid_topic_name(&topic) {
                return Err(ApiError::validation("unknown_topic", "no such topic"));
            }
            Audience::Topic(topic)
        }
        (Some(AudienceIn::Addresses(_)), Some(_)) => {
            return Err(ApiError::validation(
                "invalid_audience",
                "a topic announcement goes to audience \"all\"",
            ))
        }
        (None | Some(AudienceIn::Keyword(AudienceKeyword::All)), None) => Audience::All,
        (Some(AudienceIn::Addresses(list)), None) => {
            if list.addresses.is_empty() || list.addresses.len() > MAX_BATCH {
                return Err(ApiError::validation(
                    "invalid_audience",
                    format!("audience must list 1 to {MAX_BATCH} addresses"),
                ));
            }
            let (valid, invalid) = partition_addresses(list.addresses);
            if let Some(bad) = invalid.first() {
                let detail = format!(
                    "audience address {} is invalid ({})",
                    bad.address, bad.reason
                );
                return Err(ApiError::validation("invalid_address", detail));
            }
            Audience::Addresses(valid.unique.into_iter().collect())
        }
    };
    Ok((text.into_inner(), priority, audience))
}

/// Create an announcement; all delivery rows are created in the same transaction.
#[utoipa::path(
    post, path = "/v1/channels/{id}/announcements", tag = "announcements", request_body = AnnouncementIn,
    params(
        ("id" = String, Path, description = "Channel id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 hours"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Accepted; deliveries are queued", body = AnnouncementOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
        (status = 409, description = "Same Idempotency-Key still in flight", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 422, description = "Invalid body, or Idempotency-Key reused with another body", body = ErrorBody),
        (status = 429, description = "Request rate (`rate_limited`) or the tenant's pending-delivery quota (`quota_exceeded`) exceeded; see Retry-After", body = ErrorBody),
    )
)]
async fn create_announcement(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppJson(raw): AppJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    // The channel's existence and ownership are checked inside the store call (one round trip
    // fewer on the hot path); a malformed id cannot exist at all.
    let channel = ChannelId::parse(&id).ok_or(ApiError::NotFound("channel"))?;
    let key = idempotency::key_from_headers(&headers, &tenant)?;
    let hash = key
        .as_ref()
        .map(|_| idempotency::request_hash(channel.as_str(), &raw));
    let body: AnnouncementIn = serde_json::from_value(raw)
        .map_err(|e| ApiError::validation("invalid_body", e.to_string()))?;
    let send_at = schedule::check_send_at(body.send_at.as_deref(), chrono::Utc::now())?;
    let content = body
        .content
        .clone()
        .and_then(AnnouncementContent::into_domain);
    if let Some(c) = &content {
        c.check()
            .map_err(|e| ApiError::validation("invalid_content", e.to_string()))?;
    }
    let (text, priority, audience) = validate(body)?;
    if let Some(topic) = audience.topic() {
        // Checked here (not in `validate`) because it needs the store.
        if state.store.get_topic(&channel, topic).await?.is_none() {
            return Err(ApiError::validation(
                "unknown_topic",
                format!("no topic {topic}"),
            ));
        }
    }
    let new = NewAnnouncement {
        id: AnnouncementId::generate(),
        tenant,
        channel,
        text,
        priority,
        audience,
        send_at,
        content,
    };
    let topic = new.audience.topic().map(str::to_owned);
    let out = move |a: Announcement| AnnouncementOut {
        topic: topic.clone(),
        ..AnnouncementOut::from(a)
    };
    let render_out = out.clone();
    let render = move |a: &Announcement| StoredResponse {
        status_code: StatusCode::ACCEPTED.as_u16(),
        body: serde_json::to_string(&render_out(a.clone())).expect("DTO serializes"),
    };
    let keyed = key.zip(hash);
    if let Err(refused) = super::quotas::ensure_delivery_room(&state, &new.tenant).await {
        // A request that already finished is replayed (and a reused or busy key reported)
        // even over the quota, as before any work.
        if let Some((key, hash)) = &keyed {
            if let Some(replayed) = idempotency::begin(state.store.as_ref(), key, hash).await? {
                return Ok(replayed);
            }
            release(&state, key).await;
        }
        return Err(refused);
    }
    let created = match keyed {
        None => match state.store.create_announcement(&new, None).await? {
            Creation::Created(created) => created,
            Creation::NoChannel | Creation::KeyExists => return Err(ApiError::NotFound("channel")),
        },
        Some((key, hash)) => match create_keyed(&state, &new, key, hash, render).await? {
            Ok(created) => created,
            Err(replayed) => return Ok(replayed),
        },
    };
    record_created(&created.counts);
    state
        .quota_tallies
        .pending
        .admitted(&new.tenant, created.counts.total as u64);
    // A scheduled one is found by the workers' poll once due.
    if created.counts.pending > 0 && created.send_at.is_none() {
        state.wake.deliveries();
        let store = state.store.clone();
        state.wake.others(move || async move {
            if let Err(e) = store.pipeline().wake_others().await {
                // Other replicas still find the work on their next poll.
                tracing::debug!(error = %e, "could not notify other replicas");
            }
        });
    }
    tracing::info!(announcement.id = %created.id, channel.id = %created.channel_id, recipients = created.counts.total, "announcement queued");
    Ok((StatusCode::ACCEPTED, axum::Json(out(created))).into_response())
}

/// Creates a keyed announcement. A new key (the usual case) costs one transaction (one
/// statement on Postgres for audience "all" or a topic), which records the key with its
/// response; a key already recorded is looked at
/// ([`idempotency::begin`]): replayed or refused, or, when its record expired or went stale,
/// taken over and the announcement created under that claim. `Ok(Err(response))` is a replay.
async fn create_keyed(
    state: &AppState,
    new: &NewAnnouncement,
    key: IdempotencyKey,
    hash: String,
    render: impl Fn(&Announcement) -> StoredResponse + Clone + Send + Sync + 'static,
) -> Result<Result<Announcement, Response>, ApiError> {
    let completion = IdempotencyCompletion {
        key: key.clone(),
        unclaimed_hash: Some(hash.clone()),
        render: Box::new(render.clone()),
    };
    match state
        .store
        .create_announcement(new, Some(completion))
        .await?
    {
        Creation::Created(created) => return Ok(Ok(created)),
        Creation::NoChannel => return Err(ApiError::NotFound("channel")),
        Creation::KeyExists => {}
    }
    if let Some(replayed) = idempotency::begin(state.store.as_ref(), &key, &hash).await? {
        return Ok(Err(replayed));
    }
    let completion = IdempotencyCompletion {
        key: key.clone(),
        unclaimed_hash: None,
        render: Box::new(render),
    };
    let outcome = state.store.create_announcement(new, Some(completion)).await;
    if let Ok(Creation::Created(created)) = outcome {
        return Ok(Ok(created));
    }
    release(state, &key).await;
    match outcome {
        Err(err) => Err(err.into()),
        Ok(_) => Err(ApiError::NotFound("channel")),
    }
}

/// Releases a claimed key so the client's retry is not stuck behind a failed attempt.
async fn release(state: &AppState, key: &IdempotencyKey) {
    if let Err(release) = state.store.abandon_idempotent(key).await {
        tracing::warn!(error = %release, "could not release idempotency key");
    }
}

fn record_created(counts: &Counts) {
    metrics::counter!("herald_announcements_created_total").increment(1);
    metrics::counter!("herald_deliveries_created_total", "status" => "pending")
        .increment(counts.pending as u64);
    metrics::counter!("herald_deliveries_created_total", "status" => "skipped")
        .increment(counts.skipped as u64);
}

/// Get an announcement with its per-status delivery counts, topic and ETA.
#[utoipa::path(
    get, path = "/v1/announcements/{id}", tag = "announcements",
    params(("id" = String, Path, description = "Announcement id")),
    security(("api_key" = [])),
    responses((status = 200, description = "OK", body = AnnouncementOut), (status = 401, description = "Missing or invalid API key", body = ErrorBody), (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody))
)]
async fn get_announcement(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<axum::Json<AnnouncementOut>, ApiError> {
    let id = AnnouncementId::parse(&id).ok_or(ApiError::NotFound("announcement"))?;
    let announcement = state
        .store
        .get_announcement(&tenant, &id)
        .await?
        .ok_or(ApiError::NotFound("announcement"))?;
    let progress = eta::progress(&state, &announcement).await?;
    Ok(axum::Json(AnnouncementOut {
        topic: progress.topic,
        eta_seconds: progress.eta_seconds,
        eta_stale: progress.eta_stale,
        ..announcement.into()
    }))
}

/// List an announcement's deliveries (one per recipient), ordered by address.
#[utoipa::path(
    get, path = "/v1/announcements/{id}/deliveries", tag = "announcements",
    params(("id" = String, Path, description = "Announcement id"), DeliveryParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = DeliveryList), (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody), (status = 422, description = "Validation failed", body = ErrorBody),
    )
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<DeliveryParams>,
) -> Result<axum::Json<DeliveryList>, ApiError> {
    let id = AnnouncementId::parse(&id).ok_or(ApiError::NotFound("announcement"))?;
    let status = params
        .status
        .as_deref()
        .map(|s| {
            s.parse().map_err(|_| {
                ApiError::validation(
                    "invalid_status",
                    "status must be pending, delivered, failed or skipped",
                )
            })
        })
        .transpose()?;
    let limit = check_limit(params.limit)?;
    check_cursor(params.cursor.as_deref(), |c| Address::parse(c).is_ok())?;
    let page = Page {
        limit: limit + 1,
        cursor: params.cursor,
    };
    let deliveries = state
        .store
        .list_deliveries(&tenant, &id, status, &page)
        .await?
        .ok_or(ApiError::NotFound("announcement"))?;
    let (items, next_cursor) = paginate(deliveries, limit, |d| d.address.to_string());
    Ok(axum::Json(DeliveryList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// List a channel's announcements, newest first, optionally by status.
#[utoipa::path(
    get, path = "/v1/channels/{id}/announcements", tag = "announcements",
    params(("id" = String, Path, description = "Channel id"), AnnouncementParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OK", body = AnnouncementList),
        (status = 400, description = "Invalid cursor", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such object (or it belongs to another tenant)", body = ErrorBody),
        (status = 422, description = "Validation failed", body = ErrorBody),
    )
)]
async fn list_channel_announcements(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<AnnouncementParams>,
) -> Result<axum::Json<AnnouncementList>, ApiError> {
    let channel = ChannelId::parse(&id).ok_or(ApiError::NotFound("channel"))?;
    let status = match params.status.as_deref() {
        None => None,
        Some(s @ ("queued" | "sending" | "completed")) => Some(s),
        Some(_) => {
            return Err(ApiError::validation(
                "invalid_status",
                "status must be queued, sending or completed",
            ))
        }
    };
    let limit = check_limit(params.limit)?;
    check_cursor(params.cursor.as_deref(), |c| {
        AnnouncementId::parse(c).is_some()
    })?;
    let page = Page {
        limit: limit + 1,
        cursor: params.cursor.clone(),
    };
    let announcements = state
        .store
        .list_channel_announcements(&tenant, &channel, status, &page)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    let (items, next_cursor) = paginate(announcements, limit, |a| a.id.to_string());
    Ok(axum::Json(AnnouncementList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_announcement, list_channel_announcements))
        .routes(routes!(get_announcement))
        .routes(routes!(list_deliveries))
        .routes(routes!(events::announcement_events))
        .routes(routes!(schedule::cancel_announcement))
}
