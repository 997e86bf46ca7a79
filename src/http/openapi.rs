//! The OpenAPI document: generated from the handlers' `#[utoipa::path]` attributes, printed by
//! `herald openapi`, committed as `openapi.yaml`, and compared in a test so they never drift.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "herald",
        description = "Turns REST calls into end-to-end-encrypted XMTP direct-message announcements.",
        license(name = "MIT")
    ),
    modifiers(&BearerSchemes),
    tags(
        (name = "tenants", description = "Admin: create tenants and their API keys"),
        (name = "keys", description = "A tenant's own API keys: create, list, revoke (rotation)"),
        (name = "channels", description = "Sender identities"),
        (name = "subscribers", description = "Who receives a channel's announcements"),
        (name = "announcements", description = "Messages and their per-recipient deliveries"),
        (name = "triggers", description = "On-chain events that become announcements"),
        (name = "self-service", description = "Subscribers opting in and out themselves; the consent log"),
        (name = "topics", description = "Channel topics and subscribers' topic choices"),
        (name = "operations", description = "Probes and metrics"),
    )
)]
struct ApiDoc;

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, format) in [("api_key", "hk_…"), ("admin_token", "admin token")] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format(format)
                .build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// The document skeleton the routers add their paths to.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The full specification as YAML.
pub fn yaml() -> String {
    let (_, spec) = super::api().split_for_parts();
    spec.to_yaml()
        .expect("the OpenAPI document serializes to YAML")
}
