//! The table of deliveries, for customers (rows link to their page) or the
//! operator (rows can be ticked for a replay).

use hookrelay_core::model::Delivery;
use leptos::prelude::*;

use crate::view::{badge, maybe_when, when};

/// Who a delivery table is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Rows link to the customer's delivery page.
    Customer,
    /// Rows link to the operator's view, each with a checkbox of the form `pick`.
    Pickable,
}

pub fn deliveries_table(rows: Vec<Delivery>, kind: Rows) -> AnyView {
    if rows.is_empty() {
        return view! { <p class="card empty">"No deliveries match. Events sent to your endpoints appear here within a second."</p> }.into_any();
    }
    let pickable = kind == Rows::Pickable;
    let rows = rows
        .into_iter()
        .map(|d| {
            let href = if kind == Rows::Customer {
                format!("/console/deliveries/{}", d.id)
            } else {
                format!("/console/admin/deliveries/{}", d.id)
            };
            let status = d.status.as_str().to_string();
            let pick = pickable.then(|| {
                view! { <td class="select"><input type="checkbox" form="pick" name="id" value=d.id.to_string()/></td> }
            });
            view! {
                <tr>
                    {pick}
                    <td><a href=href><code>{d.id.to_string()}</code></a></td>
                    <td>{d.event_type.clone()}</td>
                    <td>{badge(&status)}</td>
                    <td>{d.attempts}</td>
                    <td>{d.last_response_status.map(|s| s.to_string()).unwrap_or_default()}</td>
                    <td>{when(d.created_at)}</td>
                    <td>{maybe_when(d.next_attempt_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <thead><tr>
                {pickable.then(|| view! { <th class="select"></th> })}
                <th>"Delivery (webhook-id)"</th><th>"Event type"</th><th>"Status"</th><th>"Attempts"</th><th>"Last status"</th><th>"Created"</th><th>"Next attempt"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
