//! Request limits answered with 429, `Retry-After` and `{code, detail}`: per-tenant token
//! buckets (the `Tenant` extractor), per-client buckets on the public self-service endpoints
//! ([`PublicClient`]), and [`refuse`] for the other limits and quotas. Every refusal counts in
//! `herald_limited_requests_total{limit}`.
//!
//! In-process state: with several replicas each enforces the limit on its own share of the
//! traffic, which is the usual trade-off for not needing a shared store on the hot path.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use token_bucket::{KeyedBuckets, Rate};

use super::error::ApiError;
use super::AppState;

/// Token buckets keyed by tenant id or client. A rate of 0 disables limiting.
pub struct RateLimiter {
    /// The `limit` label of the refusal metric.
    name: &'static str,
    buckets: KeyedBuckets<String>,
}

impl RateLimiter {
    /// Per-tenant limit: `per_second` sustained, bursts up to twice that.
    pub fn new(per_second: u32) -> Self {
        Self::with_rate(
            "tenant",
            Rate::per_second(per_second, per_second.saturating_mul(2)),
        )
    }

    /// `per_minute` sustained, bursts up to `burst` (at least 1), refusals counted as `name`.
    pub fn per_minute(name: &'static str, per_minute: u32, burst: u32) -> Self {
        Self::with_rate(name, Rate::per_minute(per_minute, burst))
    }

    fn with_rate(name: &'static str, rate: Rate) -> Self {
        Self {
            name,
            buckets: KeyedBuckets::new(rate),
        }
    }

    /// Takes one token for `key`, or says how long to wait (the tenant limit's 429).
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        self.take(key).map_err(|retry_after_secs| {
            count_refusal(self.name);
            ApiError::RateLimited { retry_after_secs }
        })
    }

    /// Takes one token for `key`, or returns the seconds until one is available.
    fn take(&self, key: &str) -> Result<(), u64> {
        self.buckets
            .take(key.to_owned(), 1.0, Instant::now())
            .map_err(|wait| wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// A 429 for limit `limit` (the metric label) with its own code and reason.
pub fn refuse(
    limit: &'static str,
    code: &'static str,
    detail: impl Into<String>,
    retry_after_secs: u64,
) -> ApiError {
    count_refusal(limit);
    ApiError::TooMany {
        code,
        detail: detail.into(),
        retry_after_secs,
    }
}

fn count_refusal(limit: &'static str) {
    metrics::counter!("herald_limited_requests_total", "limit" => limit).increment(1);
}

/// The client of a public (keyless) request, after its per-client rate limit (429
/// `client_rate_limited`). The client is the connection's peer address, or with
/// `selfservice.client_ip_header` set (behind a trusted proxy) the last address in that header.
/// IPv6 clients are limited per /64, the block one subscriber line usually gets.
pub struct PublicClient(pub String);

impl FromRequestParts<AppState> for PublicClient {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let header = state.selfservice.client_ip_header.as_str();
        let ip = (!header.is_empty())
            .then(|| forwarded_ip(&parts.headers, header))
            .flatten()
            .or(peer);
        let client = match ip {
            Some(ip) => client_key(ip),
            None => {
                // Only when the server is not served with connect info: then every client
                // shares one bucket, which the operator must see.
                tracing::warn!("no client address for a public request; limits are shared");
                "unknown".to_owned()
            }
        };
        state
            .public_limiter
            .take(&client)
            .map_err(|retry_after_secs| {
                refuse(
                    "public_client",
                    "client_rate_limited",
                    "too many public requests from this address; retry later",
                    retry_after_secs,
                )
            })?;
        Ok(Self(client))
    }
}

/// The last (nearest proxy's) address in a forwarding header such as `X-Forwarded-For`.
fn forwarded_ip(headers: &HeaderMap, name: &str) -> Option<IpAddr> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

/// The bucket key of an address: IPv4 as is, IPv6 by its /64 prefix.
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let limiter = RateLimiter::new(2);
        for _ in 0..4 {
            limiter.check("ten_a").unwrap();
        }
        assert!(matches!(
            limiter.check("ten_a"),
            Err(ApiError::RateLimited { .. })
        ));
        assert!(limiter.check("ten_b").is_ok(), "buckets are per tenant");
        assert!(RateLimiter::new(0).check("ten_a").is_ok());
    }

    #[test]
    fn per_minute_buckets_say_when_to_retry() {
        let limiter = RateLimiter::per_minute("public_client", 6, 2);
        assert!(limiter.take("1.2.3.4").is_ok());
        assert!(limiter.take("1.2.3.4").is_ok());
        assert_eq!(limiter.take("1.2.3.4"), Err(10));
        assert!(limiter.take("1.2.3.5").is_ok());
    }

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 10.1.2.3".parse().unwrap());
        assert_eq!(
            forwarded_ip(&headers, "x-forwarded-for"),
            Some("10.1.2.3".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(forwarded_ip(&headers, "x-forwarded-for"), None);
    }
}
