//! The API explorer at `/docs`: our page, the npm package redoc's standalone
//! script (read once from HOOKRELAY_DOCS_PKG) and `/openapi.json`, all from this
//! server: no CDN, so it works offline, under its own Content-Security-Policy.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const SCRIPT: &str = "redoc.standalone.js";

/// Redoc styles itself inline and runs its search in a worker from a blob.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/docs", get(page))
        .route("/docs/redoc.standalone.js", get(script))
}

/// The script, read on first use; `None` when it is not installed.
fn bundle(state: &AppState) -> Option<&'static Arc<[u8]>> {
    static BUNDLE: OnceLock<Option<Arc<[u8]>>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            std::fs::read(state.config.console.docs.join(SCRIPT))
                .ok()
                .map(Arc::from)
        })
        .as_ref()
}

fn secured(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

async fn page(State(state): State<AppState>) -> Response {
    let body = if bundle(&state).is_some() {
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>hookrelay API</title></head><body>\
         <redoc spec-url=\"/openapi.json\" hide-download-button=\"false\"></redoc>\
         <script src=\"/docs/redoc.standalone.js\"></script></body></html>\n"
    } else {
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>hookrelay API</title></head><body><h1>hookrelay API</h1>\
         <p>The explorer's script is not installed on this server: run \
         <code>deploy/local/api-docs.sh</code> (or point HOOKRELAY_DOCS_PKG at a folder \
         holding redoc.standalone.js). The contract itself is at \
         <a href=\"/openapi.json\">/openapi.json</a>.</p></body></html>\n"
    };
    secured(Html(body).into_response())
}

async fn script(State(state): State<AppState>) -> Response {
    match bundle(&state) {
        Some(js) => secured(
            (
                [
                    (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                js.to_vec(),
            )
                .into_response(),
        ),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
