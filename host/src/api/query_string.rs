//! The query string of an admin endpoint's URL (`?limit=100&cursor=...`): its parameters,
//! and the page size most of them take.

use hyper::Request;

use super::ApiError;

/// The value of the parameter `name` in `request`'s query string, as sent (not decoded);
/// the first if it is given twice.
pub(super) fn parameter<'r, B>(request: &'r Request<B>, name: &str) -> Option<&'r str> {
    request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The `limit` parameter: `default` when absent, else a number from 1 to `max` (400
/// `BadLimit` otherwise).
pub(super) fn limit<B>(
    request: &Request<B>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match parameter(request, "limit") {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "BadLimit",
                    format!("limit must be a number from 1 to {max}"),
                )
            }),
    }
}
