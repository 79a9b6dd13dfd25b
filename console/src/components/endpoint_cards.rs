//! The endpoint page's cards: its action buttons, its signing secret, and how its
//! deliveries flow (paused, ordered, filtered, by channel; what waits).

use hookrelay_core::model::{Endpoint, Ordering};
use hookrelay_core::store::EndpointBacklog;
use leptos::prelude::*;
use uuid::Uuid;

use crate::view::{self, badge, maybe_when, when};

/// The endpoint page's card for the secret: rotation with a grace period.
pub fn secret_card(e: &Endpoint, csrf: &str) -> AnyView {
    let action = format!("/console/endpoints/{}/rotate", e.id);
    let overlap = e.previous_secret_expires_at.map(|t| {
        view! { <p class="muted" id="secret-overlap">"The previous secret also signs requests until " {when(t)} "."</p> }
    });
    view! {
        <section class="card">
            <h2>"Signing secret"</h2>
            <p class="muted">"Every request carries a webhook-signature made with this endpoint's secret. Rotating makes a new one and shows it once; the old one keeps signing beside it for the grace period you choose, so your verifier can switch without missing a message."</p>
            {overlap}
            <form method="post" action=action class="inline">
                {view::csrf_field(csrf)}
                <label>"Old secret valid for "
                    <select name="grace">
                        <option value="0">"no time (stop now)"</option>
                        <option value="3600">"1 hour"</option>
                        <option value="86400" selected=true>"24 hours"</option>
                        <option value="604800">"7 days"</option>
                    </select>
                </label>
                <button type="submit" id="rotate">"Rotate secret"</button>
            </form>
        </section>
    }
    .into_any()
}

/// The endpoint page's buttons: edit and send a test event.
pub fn actions(id: Uuid, csrf: &str) -> AnyView {
    let edit = format!("/console/endpoints/{id}/edit");
    let test = format!("/console/endpoints/{id}/test");
    view! {
        <a class="button" href=edit id="edit">"Edit"</a>
        <form method="post" action=test class="inline">
            {view::csrf_field(csrf)}
            <button type="submit" id="send-test">"Send test event"</button>
        </form>
    }
    .into_any()
}

/// What the controls card may offer: pausing needs `endpoints:write`, cancelling `replay`.
pub struct May {
    pub write: bool,
    pub cancel: bool,
}

/// How the endpoint's deliveries flow and what waits: paused or not (with the
/// button), its order and the head the others wait behind, its channels and
/// filter (with a test against a stored event), and cancelling its backlog.
pub fn controls_card(e: &Endpoint, b: &EndpointBacklog, csrf: &str, may: May) -> AnyView {
    let id = e.id;
    let state = if e.paused {
        view! { {badge("paused")} " since " {maybe_when(e.paused_at)} " " <span class="muted">{e.paused_reason.clone().unwrap_or_default()}</span> }.into_any()
    } else {
        badge("flowing").into_any()
    };
    let order = match e.ordering {
        Ordering::Strict => format!(
            "strict: in acceptance order, one at a time; when the first in line dies: {}",
            e.on_dead
        ),
        Ordering::None => "as fast as possible".to_string(),
    };
    let head = b.head.map(|h| {
        let href = format!("/console/deliveries/{h}");
        view! {
            <dt>"First in line"</dt>
            <dd id="head"><a href=href>{h.to_string()}</a>
                {format!(" ({} attempts", b.head_attempts.unwrap_or(0))}
                {b.head_next_attempt_at.map(|t| view! { ", next " {when(t)} })} ")"
                {b.head_accepted_at.map(|t| view! { " accepted " {when(t)} })}
            </dd>
        }
    });
    let channels = e
        .channels
        .as_ref()
        .map_or("every channel".to_string(), |c| c.join(", "));
    let filter = e
        .filter
        .as_ref()
        .map_or("none".to_string(), |f| f.0.to_string());
    let toggle = may.write.then(|| {
        view! {
            <form method="post" action=format!("/console/endpoints/{id}/pause") class="inline">
                {view::csrf_field(csrf)}
                <input type="hidden" name="paused" value=(!e.paused).to_string()/>
                <button type="submit" id="pause" class=if e.paused { "primary" } else { "" }>
                    {if e.paused { "Resume" } else { "Pause" }}
                </button>
            </form>
        }
    });
    let cancel = may.cancel.then(|| {
        view! {
            <form method="post" action=format!("/console/endpoints/{id}/cancel") class="inline">
                {view::csrf_field(csrf)}
                <button type="submit" class="danger" id="cancel-backlog">"Cancel everything not delivered"</button>
            </form>
        }
    });
    view! {
        <section class="card" id="controls">
            <h2>"Delivery"</h2>
            <dl class="facts">
                <dt>"State"</dt><dd id="paused-state">{state}</dd>
                <dt>"Waiting"</dt><dd id="waiting">{format!("{} ", b.waiting)}
                    {b.oldest_waiting_at.map(|t| view! { "the oldest since " {when(t)} })}</dd>
                <dt>"Order"</dt><dd>{order}</dd>
                {head}
                <dt>"Channels"</dt><dd>{channels}</dd>
                <dt>"Filter"</dt><dd><code>{filter}</code></dd>
            </dl>
            <div class="actions">{toggle} {cancel}</div>
            <form method="post" action=format!("/console/endpoints/{id}/filter-test") class="stack" id="filter-test">
                {view::csrf_field(csrf)}
                <label>"Would it receive this event? " <input type="text" name="event_id" placeholder="event id" required=true/></label>
                <label>"Filter to try (empty: its own)" <textarea name="filter" rows="2"></textarea></label>
                <button type="submit">"Test"</button>
            </form>
        </section>
    }
    .into_any()
}
