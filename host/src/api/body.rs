//! Reading request bodies: within a size limit (413 past it), as JSON (400 if it is not).

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Reads the whole body, refusing one over `limit` bytes.
pub async fn read(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("the request body is over the limit of {limit} bytes"),
        )),
        Err(err) => Err(ApiError::bad_request(
            "BadRequestBody",
            format!("cannot read the request body: {err}"),
        )),
    }
}

/// Reads the body as JSON of type `T`.
pub async fn read_json<T: DeserializeOwned>(body: Incoming, limit: usize) -> Result<T, ApiError> {
    let bytes = read(body, limit).await?;
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(
            "BadJsonBody",
            format!("the request body is not valid JSON for this endpoint: {err}"),
        )
    })
}
