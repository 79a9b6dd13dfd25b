//! The optional wasm build of the console's islands (`console.js` and
//! `console_bg.wasm`), read once at start from `HOOKRELAY_CONSOLE_PKG` and served
//! under `/console/pkg/`. Absent, pages work the same and reload themselves instead.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub struct Pkg {
    js: Vec<u8>,
    wasm: Vec<u8>,
    /// Both files' digest: browsers revalidate and get 304 while it holds.
    etag: HeaderValue,
}

impl Pkg {
    /// The build in `dir`, or `None` (logged) when it is not there.
    pub fn load(dir: &Path) -> Option<Arc<Self>> {
        let read = |name: &str| std::fs::read(dir.join(name));
        match (read("console.js"), read("console_bg.wasm")) {
            (Ok(js), Ok(wasm)) => {
                let digest = Sha256::new()
                    .chain_update(&js)
                    .chain_update(&wasm)
                    .finalize();
                let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                tracing::info!(dir = %dir.display(), "console islands: serving the wasm build");
                Some(Arc::new(Self {
                    js,
                    wasm,
                    etag: HeaderValue::from_str(&format!("\"{tag}\"")).ok()?,
                }))
            }
            _ => {
                tracing::info!(dir = %dir.display(), "console islands: no wasm build; pages reload themselves");
                None
            }
        }
    }
}

fn serve(
    pkg: Option<&Pkg>,
    headers: &HeaderMap,
    pick: fn(&Pkg) -> (&[u8], &'static str),
) -> Response {
    let Some(pkg) = pkg else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fresh = headers.get(header::IF_NONE_MATCH) == Some(&pkg.etag);
    let common = [
        (header::ETAG, pkg.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let (body, kind) = pick(pkg);
    (common, [(header::CONTENT_TYPE, kind)], body.to_vec()).into_response()
}

pub async fn js(State(pkg): State<Option<Arc<Pkg>>>, headers: HeaderMap) -> Response {
    serve(pkg.as_deref(), &headers, |p| {
        (&p.js, "text/javascript; charset=utf-8")
    })
}

pub async fn wasm(State(pkg): State<Option<Arc<Pkg>>>, headers: HeaderMap) -> Response {
    serve(pkg.as_deref(), &headers, |p| (&p.wasm, "application/wasm"))
}
