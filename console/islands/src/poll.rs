//! In the browser: asks a progress URL for a fresh snapshot every second.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::snapshot::Snapshot;

const EVERY_MS: i32 = 1000;

async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

enum Answer {
    Fresh(Snapshot),
    /// The network or the server hiccuped: ask again.
    Again,
    /// The session is gone (the request was sent to sign-in) or the thing vanished.
    Gone,
}

async fn ask(url: &str) -> Answer {
    let Some(window) = web_sys::window() else {
        return Answer::Gone;
    };
    let Ok(value) = JsFuture::from(window.fetch_with_str(url)).await else {
        return Answer::Again;
    };
    let Ok(response) = value.dyn_into::<web_sys::Response>() else {
        return Answer::Again;
    };
    if response.redirected() || matches!(response.status(), 401 | 404) {
        return Answer::Gone;
    }
    if !response.ok() {
        return Answer::Again;
    }
    let Ok(text) = response.text() else {
        return Answer::Again;
    };
    match JsFuture::from(text).await.ok().and_then(|t| t.as_string()) {
        Some(body) => serde_json::from_str(&body).map_or(Answer::Again, Answer::Fresh),
        None => Answer::Again,
    }
}

fn reload() {
    if let Some(w) = web_sys::window() {
        let _ = w.location().reload();
    }
}

/// Keeps `snapshot` current until it is finished.
pub fn follow(url: String, snapshot: RwSignal<Snapshot>, reload_on_change: bool) {
    leptos::task::spawn_local(async move {
        loop {
            sleep_ms(EVERY_MS).await;
            match ask(&url).await {
                Answer::Fresh(fresh) => {
                    let changed = fresh.count != snapshot.get_untracked().count;
                    let finished = fresh.finished;
                    snapshot.set(fresh);
                    if changed && reload_on_change {
                        return reload();
                    }
                    if finished {
                        return;
                    }
                }
                Answer::Again => {}
                Answer::Gone => return reload(),
            }
        }
    });
}
