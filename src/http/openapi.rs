//! The OpenAPI document: generated from the handlers' `#[utoipa::path]` attributes, printed by
//! `herald openapi`, committed as `openapi.yaml`, and compared in a test so they never drift.

use utoipa::openapi::header::Header;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "herald",
        description = "Turns REST calls into end-to-end-encrypted XMTP direct-message announcements.",
        license(name = "MIT")
    ),
    modifiers(&BearerSchemes),
    // Named in the progress stream's event data, which the document can only describe as text.
    components(schemas(super::announcements::ProgressEvent)),
    tags(
        (name = "tenants", description = "Admin: create tenants and their API keys"),
        (name = "keys", description = "A tenant's own API keys: create, list, revoke (rotation)"),
        (name = "channels", description = "Sender identities"),
        (name = "subscribers", description = "Who receives a channel's announcements"),
        (name = "announcements", description = "Messages and their per-recipient deliveries"),
        (name = "triggers", description = "On-chain events that become announcements"),
        (name = "watches", description = "Per-subscriber conditions on chain state that alert only the subscriber whose state crossed"),
        (name = "self-service", description = "Subscribers opting in and out themselves; the consent log"),
        (name = "topics", description = "Channel topics and subscribers' topic choices"),
        (name = "webhooks", description = "Signed notifications to the tenant's own endpoints (Standard Webhooks) and their delivery log"),
        (name = "operations", description = "Probes and metrics"),
    )
)]
struct ApiDoc;

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, format) in [
            ("api_key", "hk_…"),
            ("admin_token", "admin token"),
            (
                "subscriber_session",
                "hsub.… (from a wallet-signature subscribe)",
            ),
        ] {
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
    finish(spec)
        .to_yaml()
        .expect("the OpenAPI document serializes to YAML")
}

/// The routers' document completed with the errors common to every operation: what
/// `openapi.yaml` and `/openapi.json` show.
pub fn finish(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    add_common_errors(&mut spec);
    spec
}

/// Documents, on every operation that does not already, the errors any request of its kind
/// can meet before its handler decides anything: 400 (an unparseable request, a path or query
/// encoding a control character, a garbage cursor), 413/415/422 for a JSON body (too large,
/// not declared JSON, not an object / repeated key / control character / wrong shape), 422 for
/// query parameters out of range, and 429 past the tenant's rate limit.
fn add_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let has_query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            let tenant = op
                .security
                .iter()
                .flatten()
                .any(|s| serde_json::to_value(s).is_ok_and(|v| v.get("api_key").is_some()));
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, response: Response| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(response));
            };
            add(
                "400",
                error("Malformed request: unparseable HTTP, a control character encoded in the path or query, a query of the wrong shape, or an invalid cursor"),
            );
            if has_body {
                add(
                    "413",
                    error("Request body larger than the configured limit"),
                );
                add("415", error("Body not declared as `application/json`"));
                add("422", error("Validation failed: not a JSON object, a repeated key, a control character in a string, or a field breaking a rule"));
            }
            if has_query {
                add(
                    "422",
                    error("A query parameter is out of range (`invalid_limit`)"),
                );
            }
            if tenant {
                let retry_after = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
                let limited =
                    error_builder("Rate limit exceeded; retry after `Retry-After` seconds")
                        .header("Retry-After", retry_after)
                        .build();
                add("429", limited);
            }
        }
    }
}

fn error_builder(description: &str) -> ResponseBuilder {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
}

fn error(description: &str) -> Response {
    error_builder(description).build()
}
