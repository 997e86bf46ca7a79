//! `grpc.health.v1.Health/Check`: libxmtp's multi-node client checks every node from
//! `GetNodes` before it reads from one.

use tonic::{Request, Response, Status};
use xmtp_proto::grpc::health::v1::health_check_response::ServingStatus;
use xmtp_proto::grpc::health::v1::health_server;
use xmtp_proto::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};

/// Services this listener answers for (besides "", the whole server).
const SERVICES: &[&str] = &[
    "xmtp.identity.api.v1.IdentityApi",
    "xmtp.mls.api.v1.MlsApi",
    "xmtp.xmtpv4.payer_api.PayerApi",
    "xmtp.xmtpv4.message_api.ReplicationApi",
];

#[derive(Clone, Default)]
pub struct Health;

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if service.is_empty() || SERVICES.contains(&service.as_str()) {
            Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            }))
        } else {
            Err(Status::not_found(format!("unknown service {service}")))
        }
    }
}
