//! The d14n networks herald knows by name and the gateway credential.

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};

use crate::transport::TransportError;

/// XMTP's d14n networks by libxmtp 1.10's names (`xmtp_configuration::GrpcUrls{Dev,Staging,
/// Production}`, `XmtpEnv`): (name, gateway URL, node URL). The gateway lists the nodes
/// itself, so only its URL is needed; the node URL is for diagnostics. `mainnet` is a name in
/// libxmtp 1.10 without URLs yet.
pub const NETWORKS: [(&str, &str, &str); 3] = [
    (
        "testnet-dev",
        "https://payer.testnet-dev.xmtp.network:443",
        "https://grpc.testnet-dev.xmtp.network:443",
    ),
    (
        "testnet-staging",
        "https://payer.testnet-staging.xmtp.network:443",
        "https://grpc.testnet-staging.xmtp.network:443",
    ),
    (
        "testnet",
        "https://payer.testnet.xmtp.network:443",
        "https://grpc.testnet.xmtp.network:443",
    ),
];

/// The gateway URL of a d14n network named as libxmtp names it (see [`NETWORKS`]).
pub fn gateway_for(network: &str) -> Option<&'static str> {
    NETWORKS
        .iter()
        .find(|(name, _, _)| *name == network)
        .map(|(_, gateway, _)| *gateway)
}

/// An optional credential header for the gateway (libxmtp's default name is `authorization`).
/// Its value never appears in `Debug` output.
#[derive(Clone, Default)]
pub struct GatewayAuth(Option<(AsciiMetadataKey, AsciiMetadataValue)>);

impl GatewayAuth {
    /// `name: value` on every gateway call; refused when either is not a valid header.
    pub fn header(name: &str, value: &str) -> Result<Self, TransportError> {
        let key = AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| TransportError::Envelope(format!("invalid header name {name:?}")))?;
        let mut value = AsciiMetadataValue::try_from(value)
            .map_err(|_| TransportError::Envelope("invalid gateway credential value".into()))?;
        value.set_sensitive(true);
        Ok(Self(Some((key, value))))
    }
}

impl std::fmt::Debug for GatewayAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some((k, _)) => write!(f, "GatewayAuth({}: <redacted>)", k.as_str()),
            None => write!(f, "GatewayAuth(none)"),
        }
    }
}

impl tonic::service::Interceptor for GatewayAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some((k, v)) = &self.0 {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        Ok(req)
    }
}
