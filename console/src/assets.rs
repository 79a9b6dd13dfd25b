//! The console's stylesheet and its two small scripts (copy buttons; loading the
//! islands' wasm build), compiled into the binary so the console works offline (no
//! CDN, no external fonts).

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
const HYDRATE: &str = include_str!("../assets/hydrate.js");

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

pub async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}

pub async fn hydrate() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", HYDRATE)
}
