//! The endpoint page's cards: its action buttons and its signing secret.

use hookrelay_core::model::Endpoint;
use leptos::prelude::*;
use uuid::Uuid;

use crate::view::{self, when};

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
