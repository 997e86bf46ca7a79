//! Which XMTP network `xmtp.network` names: herald's embedded node, an XMTP v3 node (the
//! centralized API of xmtp-node-go), or the decentralized network (d14n: writes through a
//! gateway that pays, reads from nodes). The names follow libxmtp 1.10 (`xmtp_configuration`).

use std::fmt;

/// Where channels send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// herald's own node, run in this process; spoken to through its v3 API, or through its
    /// d14n gateway and node API (`embedded-d14n`, for trying and testing d14n offline).
    Embedded { d14n: bool },
    /// An XMTP v3 node (`IdentityApi` + `MlsApi`).
    V3 { url: String },
    /// The decentralized network: `gateway` takes writes (`PublishClientEnvelopes`) and names
    /// the nodes (`GetNodes`); `node` is the node to read from when one is known up front.
    D14n {
        gateway: String,
        node: Option<String>,
    },
}

/// A named network: what `xmtp.network = "<name>"` means.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    /// v3 node URL, or d14n node (read) URL.
    pub url: &'static str,
    /// d14n gateway URL (None for v3).
    pub gateway: Option<&'static str>,
    pub about: &'static str,
}

/// Every name herald accepts besides `embedded` and URLs.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "local",
        url: "http://127.0.0.1:5556",
        gateway: None,
        about: "a v3 node on this machine (herald devnode, or the SDKs' env \"local\")",
    },
    Preset {
        name: "dev",
        url: "https://grpc.dev.xmtp.network:443",
        gateway: None,
        about: "XMTP's public v3 dev network (test data, may be reset)",
    },
    Preset {
        name: "production",
        url: "https://grpc.production.xmtp.network:443",
        gateway: None,
        about: "XMTP's production v3 network (real users: Base app, Convos, ...)",
    },
    Preset {
        name: "testnet",
        url: "https://grpc.testnet.xmtp.network:443",
        gateway: Some("https://payer.testnet.xmtp.network:443"),
        about: "XMTP's decentralized testnet (d14n)",
    },
    Preset {
        name: "testnet-staging",
        url: "https://grpc.testnet-staging.xmtp.network:443",
        gateway: Some("https://payer.testnet-staging.xmtp.network:443"),
        about: "XMTP's decentralized staging testnet (d14n)",
    },
    Preset {
        name: "testnet-dev",
        url: "https://grpc.testnet-dev.xmtp.network:443",
        gateway: Some("https://payer.testnet-dev.xmtp.network:443"),
        about: "XMTP's decentralized dev testnet (d14n)",
    },
];

/// Why `xmtp.network` (with `xmtp.gateway_url`) names no usable network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("xmtp.network = {0:?} is neither a known network ({known}) nor an http:// or https:// URL", known = known_names())]
    Unknown(String),
    #[error("xmtp.network = \"mainnet\": libxmtp 1.10 lists no public mainnet gateway yet; set xmtp.gateway_url (HERALD_XMTP_GATEWAY_URL) to your gateway's URL")]
    MainnetNeedsGateway,
    #[error("xmtp.gateway_url = {0:?} is not an http:// or https:// URL")]
    BadGateway(String),
    #[error("xmtp.gateway_url is set but xmtp.network names the embedded node: use \"embedded-d14n\" to send through the embedded node's d14n API, or unset gateway_url")]
    EmbeddedWithGateway,
}

fn known_names() -> String {
    let mut names = vec!["embedded", "embedded-d14n"];
    names.extend(PRESETS.iter().map(|p| p.name));
    names.push("mainnet");
    names.join(", ")
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

impl Network {
    /// Resolves `xmtp.network`; a `gateway_url` turns a node URL (or `mainnet`) into d14n.
    pub fn parse(name: &str, gateway_url: Option<&str>) -> Result<Network, NetworkError> {
        let name = name.trim();
        let gateway = gateway_url.map(str::trim).filter(|g| !g.is_empty());
        if let Some(g) = gateway {
            if !is_url(g) {
                return Err(NetworkError::BadGateway(g.to_owned()));
            }
        }
        if name == "embedded" || name == "embedded-d14n" {
            return match gateway {
                None => Ok(Network::Embedded {
                    d14n: name == "embedded-d14n",
                }),
                Some(_) => Err(NetworkError::EmbeddedWithGateway),
            };
        }
        if name == "mainnet" {
            return match gateway {
                Some(g) => Ok(Network::D14n {
                    gateway: g.to_owned(),
                    node: None,
                }),
                None => Err(NetworkError::MainnetNeedsGateway),
            };
        }
        if let Some(p) = PRESETS.iter().find(|p| p.name == name) {
            return Ok(match (p.gateway, gateway) {
                (_, Some(g)) => Network::D14n {
                    gateway: g.to_owned(),
                    node: Some(p.url.to_owned()),
                },
                (Some(g), None) => Network::D14n {
                    gateway: g.to_owned(),
                    node: Some(p.url.to_owned()),
                },
                (None, None) => Network::V3 {
                    url: p.url.to_owned(),
                },
            });
        }
        if is_url(name) {
            return Ok(match gateway {
                Some(g) => Network::D14n {
                    gateway: g.to_owned(),
                    node: Some(name.to_owned()),
                },
                None => Network::V3 {
                    url: name.to_owned(),
                },
            });
        }
        Err(NetworkError::Unknown(name.to_owned()))
    }

    /// Whether this is XMTP's decentralized network.
    pub fn is_d14n(&self) -> bool {
        matches!(
            self,
            Network::D14n { .. } | Network::Embedded { d14n: true }
        )
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Embedded { d14n: false } => f.write_str("embedded"),
            Network::Embedded { d14n: true } => f.write_str("embedded (d14n API)"),
            Network::V3 { url } => write!(f, "v3 {url}"),
            Network::D14n { gateway, node } => match node {
                Some(node) => write!(f, "d14n gateway {gateway}, node {node}"),
                None => write!(f, "d14n gateway {gateway}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_like_libxmtp() {
        assert_eq!(
            Network::parse("embedded", None),
            Ok(Network::Embedded { d14n: false })
        );
        assert!(Network::parse("embedded-d14n", None).unwrap().is_d14n());
        assert_eq!(
            Network::parse("production", None),
            Ok(Network::V3 {
                url: "https://grpc.production.xmtp.network:443".into()
            })
        );
        assert_eq!(
            Network::parse(" local ", None),
            Ok(Network::V3 {
                url: "http://127.0.0.1:5556".into()
            })
        );
        assert_eq!(
            Network::parse("testnet", None),
            Ok(Network::D14n {
                gateway: "https://payer.testnet.xmtp.network:443".into(),
                node: Some("https://grpc.testnet.xmtp.network:443".into()),
            })
        );
        assert!(Network::parse("testnet-dev", None).unwrap().is_d14n());
        assert!(Network::parse("testnet-staging", None).unwrap().is_d14n());
    }

    #[test]
    fn mistakes_are_named() {
        let e = Network::parse("bogus", None).unwrap_err();
        assert!(e.to_string().contains("testnet"), "{e}");
        assert_eq!(
            Network::parse("mainnet", None),
            Err(NetworkError::MainnetNeedsGateway)
        );
        assert_eq!(
            Network::parse("mainnet", Some("https://gw.example:443")),
            Ok(Network::D14n {
                gateway: "https://gw.example:443".into(),
                node: None
            })
        );
        assert!(matches!(
            Network::parse("http://127.0.0.1:5556", Some("gw")),
            Err(NetworkError::BadGateway(_))
        ));
        assert_eq!(
            Network::parse("http://127.0.0.1:5556", Some("http://127.0.0.1:5556")),
            Ok(Network::D14n {
                gateway: "http://127.0.0.1:5556".into(),
                node: Some("http://127.0.0.1:5556".into())
            })
        );
        assert!(Network::parse("embedded", Some("http://x:1")).is_err());
    }
}
