//! How console pages answer for what they could not load: a malformed id or a
//! missing row is a 404 page, a database failure a 503 page. Handlers unwrap with
//! `or_page!`, which returns that page.
// The errors here are whole responses, built only on the way out.
#![allow(clippy::result_large_err)]

use axum::http::StatusCode;
use axum::response::Response;
use hookrelay_core::actions::ActionError;
use uuid::Uuid;

use crate::view::{self, Nav};

/// `expr?` for handlers that answer with a page: on `Err`, that page is the answer.
macro_rules! or_page {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(page) => return page,
        }
    };
}
pub(crate) use or_page;

pub fn unavailable(e: impl std::fmt::Display, nav: Nav) -> Response {
    tracing::warn!(error = %e, "console could not read the database");
    view::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The console cannot reach its database right now. Try again in a moment.",
        nav,
    )
}

/// A path id; anything else names nothing there is.
pub fn id(raw: &str, nav: Nav) -> Result<Uuid, Response> {
    Uuid::parse_str(raw).map_err(|_| view::not_found(nav))
}

/// A read that must find its row.
pub fn row<T, E: std::fmt::Display>(r: Result<Option<T>, E>, nav: Nav) -> Result<T, Response> {
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(view::not_found(nav)),
        Err(e) => Err(unavailable(e, nav)),
    }
}

/// A read that cannot miss (lists, counts).
pub fn loaded<T, E: std::fmt::Display>(r: Result<T, E>, nav: Nav) -> Result<T, Response> {
    r.map_err(|e| unavailable(e, nav))
}

/// A page of a list: a cursor that names nothing of the tenant's is bad input.
pub fn listed<T>(r: Result<T, hookrelay_core::store::StoreError>, nav: Nav) -> Result<T, Response> {
    match r {
        Err(hookrelay_core::store::StoreError::UnknownCursor) => Err(view::message(
            StatusCode::BAD_REQUEST,
            "Unknown page",
            "That page marker names nothing here. Start again from the first page.",
            nav,
        )),
        r => loaded(r, nav),
    }
}

/// The page for an action that was not done: a missing row is a 404, a disabled
/// endpoint a 409, refused input a 400, a database failure a 503.
pub fn refused(e: ActionError, nav: Nav) -> Response {
    match e {
        ActionError::NotFound(_) => view::not_found(nav),
        ActionError::EndpointDisabled => view::message(
            StatusCode::CONFLICT,
            "This endpoint is disabled",
            "Enable it to send it a test event.",
            nav,
        ),
        ActionError::Invalid(e) => {
            view::message(StatusCode::BAD_REQUEST, "Check the form", &e.0, nav)
        }
        ActionError::NotCancellable(_) => view::message(
            StatusCode::CONFLICT,
            "Nothing to cancel",
            &e.to_string(),
            nav,
        ),
        ActionError::SecretUnreadable => view::message(
            StatusCode::CONFLICT,
            "Secrets unreadable",
            &e.to_string(),
            nav,
        ),
        ActionError::TooManyEndpoints => view::message(
            StatusCode::CONFLICT,
            "Endpoint limit reached",
            &e.to_string(),
            nav,
        ),
        ActionError::Unscoped => view::message(
            StatusCode::BAD_REQUEST,
            "Check the form",
            "Give a filter, or choose all of them.",
            nav,
        ),
        ActionError::Unconfirmed => view::message(
            StatusCode::BAD_REQUEST,
            "Check the form",
            "Tick the box to confirm the purge.",
            nav,
        ),
        ActionError::Store(hookrelay_core::store::StoreError::Missing(_)) => view::not_found(nav),
        ActionError::Store(e) => unavailable(e, nav),
    }
}
