//! Request errors: a status, a stable code and a short message, mapped in one place.
//! (A function that fails is not a request error: it answers 200 with `status: "error"`.)

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use crate::deploy::DeployError;

/// An error answered as `{"code": ..., "message": ...}` with a 4xx or 5xx status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    pub fn internal(err: &anyhow::Error) -> Self {
        let id = request_error_id();
        tracing::error!(error_id = %id, error = ?err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("internal server error (error id {id}; the server log has the details)"),
        )
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        super::router::json_response(self.status, &body)
    }
}

impl From<DeployError> for ApiError {
    fn from(err: DeployError) -> Self {
        match err {
            DeployError::InvalidModule { .. } => {
                Self::bad_request("InvalidModule", err.to_string())
            }
            DeployError::InvalidSchema(_) => Self::bad_request("InvalidSchema", err.to_string()),
            DeployError::Internal(err) => Self::internal(&err),
        }
    }
}

/// A short random id that ties a client-visible internal error to the server's log line.
fn request_error_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap_or_default();
    hex::encode(bytes)
}
