//! hookrelay-console-islands: the parts of console pages that update themselves.
//! The server renders them like any markup (feature `ssr`); where the wasm build
//! (feature `hydrate`) is served, the browser brings them to life. Without it the
//! pages still work: they reload themselves instead.

#[cfg(all(feature = "ssr", feature = "hydrate"))]
compile_error!("build the islands either for the server (ssr) or for the browser (hydrate)");

mod live;
#[cfg(feature = "hydrate")]
mod poll;
mod snapshot;

pub use live::Live;
pub use snapshot::Snapshot;

/// The wasm entry point: sets up the reactive runtime; `hydrate.js` then calls each
/// island's export.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_islands();
}
