//! Prepares a hookrelay through its public API only: admin token → producer key →
//! tenants → endpoints pointing at our receivers.

use std::sync::Arc;

use anyhow::{Context, bail};
use hookrelay_signature::{Secret, Verifier};
use serde_json::{Value, json};

use crate::behaviour::behaviour_of;
use crate::options::Options;
use crate::receiver::{EndpointState, Receivers};

/// What the producer needs after setup.
pub struct Setup {
    pub key: String,
    /// Tenant ids, in order.
    pub tenants: Vec<String>,
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let res = http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Endpoint `index` (across tenants) of tenant `t` subscribes to type `index % types`.
pub fn endpoint_index(opts: &Options, tenant: usize, j: usize) -> usize {
    tenant * opts.endpoints + j
}

pub async fn prepare(
    http: &reqwest::Client,
    opts: &Options,
    receivers: &Receivers,
) -> anyhow::Result<Setup> {
    let api = opts.api_for(0);
    let key = post(
        http,
        format!("{api}/v1/api-keys"),
        &opts.admin_token,
        json!({ "name": "loadtest" }),
    )
    .await?;
    let key = key["key"]
        .as_str()
        .context("no key in the answer")?
        .to_string();
    let run = now_tag();
    let mut tenants = Vec::new();
    let mut states = vec![None; opts.tenants * opts.endpoints];
    for t in 0..opts.tenants {
        let tenant = post(
            http,
            format!("{api}/v1/tenants"),
            &key,
            json!({ "name": format!("loadtest {run} #{t}") }),
        )
        .await?;
        let tenant_id = tenant["id"].as_str().context("no tenant id")?.to_string();
        for j in 0..opts.endpoints {
            let index = endpoint_index(opts, t, j);
            let behaviour = behaviour_of(&opts.behaviours, index);
            let mut body = json!({ "url": receivers.url(index, behaviour), "event_types": [event_type(j % opts.event_types())] });
            for (k, v) in opts.endpoint_json.iter().flatten() {
                body[k] = v.clone();
            }
            let endpoint = post(
                http,
                format!("{api}/v1/tenants/{tenant_id}/endpoints"),
                &key,
                body,
            )
            .await?;
            let secret = Secret::from_whsec(endpoint["secret"].as_str().context("no secret")?)?;
            states[index] = Some(Arc::new(EndpointState::new(
                behaviour,
                Verifier::new(vec![secret]),
            )));
        }
        tenants.push(tenant_id);
    }
    *receivers
        .endpoints
        .write()
        .unwrap_or_else(|p| p.into_inner()) = states;
    Ok(Setup { key, tenants })
}

pub fn event_type(k: usize) -> String {
    format!("loadtest.t{k}")
}

fn now_tag() -> u64 {
    crate::receiver::now_us() / 1_000_000
}
