//! Extractors whose rejections use our JSON error shape.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// A JSON body; malformed, oversized or mistyped bodies become 4xx JSON errors.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
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
        serde_json::from_slice(&body)
            .map(OptionalBody)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::invalid(e.to_string()),
                _ => ApiError::new(ErrorCode::InvalidJson, e.to_string()),
            })
    }
}

/// `?limit=&after=` for newest-first lists.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub after: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> i64 {
        hookrelay_core::store::page_limit(self.limit)
    }

    pub fn after(&self) -> Result<Option<Uuid>, ApiError> {
        match self.after.as_deref().filter(|s| !s.is_empty()) {
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
