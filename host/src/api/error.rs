//! Request errors: a status, a stable code and a short message, mapped in one place.
//! (A function that fails is not a request error: it answers 200 with `status: "error"`.)

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::{Response, StatusCode};

use super::RequestId;
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

    /// A failure of the server itself: the cause goes to the log (in the request's span,
    /// with its id), the client gets only a short message that quotes the id.
    pub fn internal(err: &anyhow::Error) -> Self {
        tracing::error!(error = ?err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            internal_message("internal server error"),
        )
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        let mut response = super::router::json_response(self.status, &body);
        // A request that timed out may still be sending: its connection cannot be reused.
        if self.status == StatusCode::REQUEST_TIMEOUT {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<DeployError> for ApiError {
    fn from(err: DeployError) -> Self {
        match err {
            DeployError::InvalidModule { .. } => {
                Self::bad_request("InvalidModule", err.to_string())
            }
            DeployError::InvalidSchema(_) => Self::bad_request("InvalidSchema", err.to_string()),
            DeployError::InvalidJs(_) => Self::bad_request("InvalidJs", err.to_string()),
            DeployError::InvalidCron(_) => Self::bad_request("InvalidCron", err.to_string()),
            DeployError::InvalidAuthConfig(_) => {
                Self::bad_request("InvalidAuthConfig", err.to_string())
            }
            DeployError::Internal(err) => Self::internal(&err),
        }
    }
}

/// `what (request id ...): the server log has the details`: what a caller is told of a
/// failure whose cause only the log may hold.
pub fn internal_message(what: &str) -> String {
    match RequestId::current() {
        Some(id) => format!("{what} (request id {id}): the server log has the details"),
        None => format!("{what}: the server log has the details"),
    }
}
