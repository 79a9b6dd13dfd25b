//! The one error type at the HTTP edge: `{"error": {"code", "message"}}` with a status.
//! Every code the API can return is an `ErrorCode`; internal causes (database
//! errors, constraint names, broker errors) are logged, never sent to clients.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookrelay_core::actions::ActionError;
use hookrelay_core::queue::PublishError;
use hookrelay_core::store::StoreError;
use hookrelay_core::validation::Invalid;
use serde_json::json;

hookrelay_core::named_enum! {
    /// Every error code the API returns, each with the status it usually comes with;
    /// `as_str` is its one name, in JSON too.
    ErrorCode ("error code", "Every error code the API returns") {
        /// A query parameter or cursor is malformed.
        BadRequest = "bad_request",
        /// The body is not JSON.
        InvalidJson = "invalid_json",
        /// The body could not be read.
        InvalidBody = "invalid_body",
        /// The JSON is well formed but a field is missing, mistyped or out of range.
        ValidationFailed = "validation_failed",
        /// No or wrong credentials (or expired ones).
        Unauthorized = "unauthorized",
        /// The key reaches the tenant but lacks the permission this route needs.
        Forbidden = "forbidden",
        /// Too many requests: the tenant's ingest rate, or failed authentications from
        /// this address (`retry-after` says when to try again).
        RateLimited = "rate_limited",
        /// The tenant is at one of its limits (e.g. its number of endpoints): `409`,
        /// since the same request succeeds once the tenant is under it again.
        QuotaExceeded = "quota_exceeded",
        NotFound = "not_found",
        MethodNotAllowed = "method_not_allowed",
        /// A unique field is taken (e.g. a tenant's `uid`).
        Conflict = "conflict",
        /// The endpoint is disabled (e.g. a test event was asked for).
        EndpointDisabled = "endpoint_disabled",
        /// The endpoint's secret cannot be decrypted with this installation's key.
        SecretUnreadable = "secret_unreadable",
        /// The delivery is delivered, dead or cancelled already: nothing to cancel.
        NotCancellable = "not_cancellable",
        PayloadTooLarge = "payload_too_large",
        UnsupportedMediaType = "unsupported_media_type",
        /// The database or the broker is unreachable; retry (`retry-after` says when).
        Unavailable = "unavailable",
        /// `/readyz`: this gateway cannot serve yet (its checks say which part is down).
        NotReady = "not_ready",
    }
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::InvalidJson | Self::InvalidBody => StatusCode::BAD_REQUEST,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict
            | Self::EndpointDisabled
            | Self::NotCancellable
            | Self::SecretUnreadable
            | Self::QuotaExceeded => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What a unique constraint that refused a write means to the client. Unknown
/// constraints get a generic message; their name is logged, not sent.
fn conflict_message(constraint: &str) -> &'static str {
    match constraint {
        "tenants_uid_key" => "a tenant with this uid already exists",
        _ => "conflicts with an existing record",
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for `retry-after` (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with its code's usual status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_status(code.status(), code, message)
    }
    pub fn with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
            message: message.into(),
        }
    }
    /// `429` with `retry-after`.
    pub fn rate_limited(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self {
            retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(constraint) => {
                tracing::info!(%constraint, "write refused by a unique constraint");
                Self::new(ErrorCode::Conflict, conflict_message(&constraint))
            }
            StoreError::Missing(constraint) => {
                tracing::info!(%constraint, "write refused by a foreign key");
                Self::not_found("the tenant or endpoint it names")
            }
            StoreError::UnknownCursor => {
                Self::bad_request("`after` names no row of this list; start from the first page")
            }
            StoreError::Database(e) => {
                tracing::error!(error = %e, "database call failed");
                Self::unavailable("the database is unavailable; retry shortly")
            }
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        Self::invalid(e.0)
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(what) => Self::not_found(what),
            ActionError::EndpointDisabled => Self::new(ErrorCode::EndpointDisabled, e.to_string()),
            ActionError::Invalid(e) => e.into(),
            ActionError::TooManyEndpoints => Self::new(ErrorCode::QuotaExceeded, e.to_string()),
            ActionError::Unscoped | ActionError::Unconfirmed => Self::invalid(e.to_string()),
            ActionError::NotCancellable(_) => Self::new(ErrorCode::NotCancellable, e.to_string()),
            ActionError::SecretUnreadable => Self::new(ErrorCode::SecretUnreadable, e.to_string()),
            ActionError::Store(e) => e.into(),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        tracing::debug!(error = %e, "publish failed");
        Self::unavailable("the event could not be stored durably; retry shortly")
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::too_large("request body is larger than the configured limit")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with content-type: application/json",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Self::invalid(r.body_text()),
            _ => Self::new(ErrorCode::InvalidJson, r.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_name_and_a_client_or_unavailable_status() {
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).ok(), Some(json!(code.as_str())));
            let s = code.status();
            assert!(
                s.is_client_error() || s == StatusCode::SERVICE_UNAVAILABLE,
                "{code:?}"
            );
        }
    }

    #[test]
    fn constraint_names_stay_in_the_logs() {
        let e = ApiError::from(StoreError::Conflict("endpoints_secret_idx".into()));
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(!e.message.contains("endpoints_secret_idx"), "{}", e.message);
    }
}
