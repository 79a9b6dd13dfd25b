//! Extractors whose rejections use our JSON error shape.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// A JSON body; malformed, oversized or mistyped bodies become 4xx JSON errors.
/// A number with a zero fraction (`5.0`) counts as the integer it is, as JSON
/// Schema says.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(mut value) = axum::Json::<Value>::from_request(req, state).await?;
        object(&value)?;
        integral_numbers(&mut value);
        serde_json::from_value(value)
            .map(Body)
            .map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// Every body is a JSON object: serde would also fill a struct from an array.
fn object(value: &Value) -> Result<(), ApiError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(ApiError::invalid("the body must be a JSON object"))
    }
}

/// An event body, parsed once and left byte for byte (no number rewriting: the
/// payload is delivered as sent).
pub struct EventBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for EventBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(EventBody(value))
    }
}

/// Rewrites numbers such as `5.0` as `5`, so integer fields take them.
fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// A JSON body that may be left out: an empty body reads as `T::default()`.
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::with_status(e.status(), ErrorCode::InvalidBody, e.body_text())
            })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        let mut value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))?;
        if value.is_null() {
            return Ok(OptionalBody(T::default()));
        }
        object(&value)?;
        integral_numbers(&mut value);
        serde_json::from_value(value)
            .map(OptionalBody)
            .map_err(|e| ApiError::invalid(e.to_string()))
    }
}

/// `?limit=&after=` for newest-first lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub after: Option<String>,
}

/// A list's `limit`: `default` when absent, else within 1 to `max`.
pub fn bounded_limit(limit: Option<u64>, default: u64, max: u64) -> Result<u64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(format!(
            "`limit` must be from 1 to {max}"
        ))),
    }
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, ApiError> {
        let n = bounded_limit(self.limit.map(u64::from), 50, 250)?;
        Ok(i64::try_from(n).unwrap_or(250))
    }

    pub fn after(&self) -> Result<Option<Uuid>, ApiError> {
        match self.after.as_deref() {
            None => Ok(None),
            Some(s) => Uuid::parse_str(s)
                .map(Some)
                .map_err(|_| ApiError::bad_request("`after` is not a valid cursor")),
        }
    }
}

/// Query parameters; bad ones become 400 JSON errors.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(value))
    }
}

/// Parses a path id; anything else is simply not found.
pub fn path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}
