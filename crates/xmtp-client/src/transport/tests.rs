use super::*;

#[test]
fn retry_classes() {
    let s = |c| TransportError::Status(tonic::Status::new(c, "x"));
    assert!(s(Code::Unavailable).is_retryable());
    assert!(s(Code::ResourceExhausted).is_retryable());
    assert!(s(Code::DeadlineExceeded).is_retryable());
    assert!(!s(Code::InvalidArgument).is_retryable());
    assert!(!s(Code::PermissionDenied).is_retryable());
}

#[test]
fn calls_are_classified() {
    let slot = connect::ProblemSlot::default();
    let e = TransportError::from_call("MlsApi/X", tonic::Status::unimplemented(""), &slot);
    assert!(matches!(
        e,
        TransportError::Unsupported { method: "MlsApi/X" }
    ));
    assert!(!e.is_retryable());
    let retired = tonic::Status::unavailable(
        "publishing to XMTP V3 is no longer available. Please upgrade your client to XMTP D14N.",
    );
    let e = TransportError::from_call("MlsApi/X", retired, &slot);
    assert!(matches!(e, TransportError::V3Retired(_)) && !e.is_retryable());
    assert!(e.to_string().contains("d14n"));
    let e = TransportError::from_call("MlsApi/X", tonic::Status::unavailable("x"), &slot);
    assert!(matches!(e, TransportError::Status(_)) && e.is_retryable());
}

#[test]
fn the_v3_cutover_refusal_is_its_own_non_retryable_error() {
    let status = tonic::Status::unavailable(
        "publishing to XMTP V3 is no longer available. Please upgrade your client to XMTP D14N.",
    );
    let e = TransportError::from(status);
    assert!(matches!(e, TransportError::V3Retired(_)), "{e:?}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("gateway"), "{e}");
    let streams = tonic::Status::unavailable(
        "XMTP V3 streaming is no longer available. Please upgrade your client to XMTP D14N.",
    );
    assert!(matches!(
        TransportError::from(streams),
        TransportError::V3Retired(_)
    ));
    let other = TransportError::from(tonic::Status::unavailable("busy"));
    assert!(matches!(other, TransportError::Status(_)) && other.is_retryable());
}
