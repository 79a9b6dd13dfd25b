//! The customer's log filters, shared by the events and deliveries pages: parsing
//! the query string, the filter form, and the link to the next (older) page.

use hookrelay_core::model::{DeliveryStatus, Endpoint};
use hookrelay_core::store::DeliveryFilter;
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::form::{encode, given, parse_time};

/// `?endpoint=&event_type=&status=&q=&since=&until=&after=` as typed.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    endpoint: Option<String>,
    event_type: Option<String>,
    status: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
}

impl LogQuery {
    /// The filter and the cursor, or what is wrong with them.
    pub fn parse(&self) -> Result<(DeliveryFilter, Option<Uuid>), String> {
        let endpoint_id = match given(&self.endpoint) {
            Some(e) => Some(
                Uuid::parse_str(&e).map_err(|_| "The endpoint filter is not an endpoint id.")?,
            ),
            None => None,
        };
        let status = given(&self.status)
            .map(|s| s.parse::<DeliveryStatus>())
            .transpose()
            .map_err(|_| "Unknown status.")?;
        let filter = DeliveryFilter {
            endpoint_id,
            event_type: given(&self.event_type),
            status,
            search: given(&self.q),
            since: parse_time(&self.since)?,
            until: parse_time(&self.until)?,
        };
        let after = given(&self.after).and_then(|a| Uuid::parse_str(&a).ok());
        Ok((filter, after))
    }

    /// Cuts `rows` (fetched as `limit + 1`) to one page; returns the link to the
    /// next page if there is more.
    pub fn page<T>(
        &self,
        rows: &mut Vec<T>,
        limit: i64,
        path: &str,
        id: impl Fn(&T) -> Uuid,
    ) -> Option<String> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        more.then(|| rows.last().map(|r| self.next(path, id(r))))
            .flatten()
    }

    /// The link to the page after `last`, keeping the filters.
    fn next(&self, path: &str, last: Uuid) -> String {
        let mut params: Vec<(&str, String)> = [
            ("endpoint", &self.endpoint),
            ("event_type", &self.event_type),
            ("status", &self.status),
            ("q", &self.q),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect();
        params.push(("after", last.to_string()));
        format!("{path}?{}", encode(&params))
    }

    /// The filter form, filled with what was asked, submitting to `path`.
    pub fn form(
        &self,
        path: &'static str,
        f: &DeliveryFilter,
        endpoints: Vec<Endpoint>,
    ) -> AnyView {
        let endpoint_options = endpoints
            .into_iter()
            .map(|e| {
                let selected = f.endpoint_id == Some(e.id);
                view! { <option value=e.id.to_string() selected=selected>{e.url}</option> }
            })
            .collect_view();
        let status_options = DeliveryStatus::ALL
            .iter()
            .map(|st| {
                let selected = f.status == Some(*st);
                view! { <option value=st.as_str() selected=selected>{st.as_str()}</option> }
            })
            .collect_view();
        let text = |v: &Option<String>| given(v).unwrap_or_default();
        view! {
            <form method="get" action=path class="filters">
                <label>"Endpoint" <select name="endpoint"><option value="">"any"</option>{endpoint_options}</select></label>
                <label>"Event type" <input name="event_type" value=text(&self.event_type) placeholder="order.created"/></label>
                <label>"Delivery status" <select name="status"><option value="">"any"</option>{status_options}</select></label>
                <label>"Since" <input type="datetime-local" name="since" value=text(&self.since)/></label>
                <label>"Until" <input type="datetime-local" name="until" value=text(&self.until)/></label>
                <label>"Event id or idempotency key" <input name="q" value=text(&self.q)/></label>
                <button type="submit">"Filter"</button>
                <a href=path class="small">"clear"</a>
            </form>
        }
        .into_any()
    }
}
