//! The SSRF guard: webhook URLs must be `http`/`https` and every address their host resolves
//! to must be public, unless the operator's allow-list (`[webhooks] allow_private`) covers it.
//! Checked when an endpoint is created or changed, and again at every send after resolving
//! the host, and the request then connects to exactly the addresses checked (a DNS answer that
//! changes between check and connect cannot redirect it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Not an absolute `http`/`https` URL with a host. Not retryable.
    #[error("the URL must be an absolute http or https URL with a host")]
    BadUrl,
    /// The host did not resolve. Retryable (DNS may recover).
    #[error("the URL's host does not resolve")]
    Unresolvable,
    /// The host resolves to an address that is not public and not allow-listed. Not retryable.
    #[error("the URL resolves to {0}, a private, loopback, link-local, multicast or unspecified address that webhooks.allow_private does not allow")]
    Forbidden(IpAddr),
}

impl GuardError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, GuardError::Unresolvable)
    }
}

/// CIDR blocks that may be targeted although not public.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<(IpAddr, u8)>);

impl AllowList {
    /// Parses `"a.b.c.d/n"` / `"ip6/n"` blocks (a bare address means the one address).
    pub fn parse(blocks: &[String]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(blocks.len());
        for block in blocks {
            let (ip, len) = match block.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (block.as_str(), None),
            };
            let ip: IpAddr = ip.trim().parse().map_err(|_| block.clone())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l.trim().parse::<u8>().map_err(|_| block.clone())?,
                None => max,
            };
            if len > max {
                return Err(block.clone());
            }
            out.push((ip, len));
        }
        Ok(Self(out))
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|&(net, len)| in_block(ip, net, len))
    }
}

fn in_block(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Whether an address is reachable on the public internet (not private, loopback, link-local,
/// multicast, unspecified, broadcast, shared/CGNAT, documentation or unique-local).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let shared = in_block(IpAddr::V4(ip), IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10);
    let this_network = ip.octets()[0] == 0;
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || shared
        || this_network)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let unique_local = seg[0] & 0xfe00 == 0xfc00;
    let link_local = seg[0] & 0xffc0 == 0xfe80;
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local {
        return false;
    }
    // Addresses that carry an IPv4 address a gateway may route to: NAT64 (64:ff9b::/96) and
    // 6to4 (2002::/16) count as the address they embed.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return is_public_v4(v4(seg[1], seg[2]));
    }
    true
}

/// A URL that passed the guard, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: reqwest::Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

use alloy::transports::http::reqwest;

/// Parses the URL's shape only (scheme, host), without resolving it.
pub fn parse(url: &str) -> Result<reqwest::Url, GuardError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| GuardError::BadUrl)?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none_or(str::is_empty)
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(GuardError::BadUrl);
    }
    Ok(parsed)
}

/// Resolves the URL's host and checks every address it resolves to.
pub async fn check(url: &str, allow: &AllowList) -> Result<Checked, GuardError> {
    let parsed = parse(url)?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let port = parsed.port_or_known_default().ok_or(GuardError::BadUrl)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| GuardError::Unresolvable)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(GuardError::Unresolvable);
    }
    if let Some(bad) = addrs
        .iter()
        .map(SocketAddr::ip)
        .find(|&ip| !is_public(ip) && !allow.allows(ip))
    {
        return Err(GuardError::Forbidden(bad));
    }
    Ok(Checked {
        url: parsed,
        host: bare.to_owned(),
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn allow_list_blocks_match_by_prefix() {
        let allow = AllowList::parse(&["127.0.0.1/32".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(allow.allows("127.0.0.1".parse().unwrap()));
        assert!(!allow.allows("127.0.0.2".parse().unwrap()));
        assert!(allow.allows("10.200.3.4".parse().unwrap()));
        assert!(!allow.allows("::1".parse().unwrap()));
        assert!(AllowList::parse(&["nonsense".into()]).is_err());
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let none = AllowList::default();
        assert!(matches!(
            check("http://127.0.0.1:9/x", &none).await,
            Err(GuardError::Forbidden(_))
        ));
        assert!(matches!(
            check("http://[::1]:9/x", &none).await,
            Err(GuardError::Forbidden(_))
        ));
        assert!(matches!(
            check("ftp://example.com/", &none).await,
            Err(GuardError::BadUrl)
        ));
        let allow = AllowList::parse(&["127.0.0.1/32".into()]).unwrap();
        assert!(check("http://127.0.0.1:9/x", &allow).await.is_ok());
    }
}
