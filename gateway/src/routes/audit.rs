//! The audit log: every entry for the operator (`/v1/admin/audit`), and a
//! tenant's own entries for the keys that reach it (`/v1/tenants/{tenant}/audit`);
//! both filtered and paged newest first. A tenant's view names no operator: what
//! the admin token or an operator did reads as `operator`, without id or address.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookrelay_core::access::Permission;
use hookrelay_core::model::Page;
use hookrelay_core::store::{AuditEntry, AuditFilter};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, bounded_limit};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/audit", get(list_all))
        .route("/v1/tenants/{tenant}/audit", get(list_tenant))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// Only entries about this tenant (admin list only).
    tenant: Option<Uuid>,
    /// Only this action, e.g. `endpoint.secret_read`.
    #[param(max_length = 64, pattern = "^[a-z_.]+$")]
    action: Option<String>,
    /// Only what this key, operator or console session did.
    actor: Option<Uuid>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    after: Option<String>,
}

impl AuditQuery {
    fn filter(&self, tenant: Option<Uuid>) -> ApiResult<AuditFilter> {
        if let Some(a) = &self.action
            && (a.is_empty()
                || a.len() > 64
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'))
        {
            return Err(ApiError::bad_request(
                "`action` is an action name such as endpoint.updated",
            ));
        }
        Ok(AuditFilter {
            tenant_id: tenant,
            action: self.action.clone(),
            actor_id: self.actor,
            since: self.since,
            until: self.until,
        })
    }

    fn page(&self) -> ApiResult<(i64, Option<Uuid>)> {
        let limit = bounded_limit(self.limit.map(u64::from), 50, 250)? as i64;
        let after = match self.after.as_deref() {
            None => None,
            Some(s) => Some(
                Uuid::parse_str(s)
                    .map_err(|_| ApiError::bad_request("`after` is not a valid cursor"))?,
            ),
        };
        Ok((limit, after))
    }
}

async fn page(state: &AppState, q: &AuditQuery, f: AuditFilter) -> ApiResult<Page<AuditEntry>> {
    let (limit, after) = q.page()?;
    let rows = state.store.list_audit(&f, limit, after).await?;
    Ok(Page::from_rows(rows, limit as usize, |e| e.id))
}

#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "audit",
    summary = "Read the audit log",
    params(AuditQuery),
    responses((status = 200, description = "Entries, newest first", body = Page<AuditEntry>)),
    security(("admin_token" = [])),
)]
pub(super) async fn list_all(
    State(state): State<AppState>,
    _a: Admin,
    Params(q): Params<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let f = q.filter(q.tenant)?;
    Ok(Json(page(&state, &q, f).await?))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/audit",
    tag = "audit",
    summary = "Read this tenant's audit log",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), AuditQuery),
    responses((status = 200, description = "Entries about this tenant, newest first", body = Page<AuditEntry>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn list_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Params(q): Params<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let f = q.filter(Some(tenant.id))?;
    // Another tenant's filter within this tenant's log matches nothing.
    if q.tenant.is_some_and(|t| t != tenant.id) {
        q.page()?;
        return Ok(Json(Page { data: Vec::new(), next: None }));
    }
    let mut page = page(&state, &q, f).await?;
    for e in &mut page.data {
        anonymize_operator(e);
    }
    Ok(Json(page))
}

/// What a tenant sees of an entry the operator made: that the operator acted,
/// not who or from where.
fn anonymize_operator(e: &mut AuditEntry) {
    if matches!(e.actor_kind.as_str(), "admin" | "operator") {
        e.actor_kind = "operator".to_string();
        e.actor_id = None;
        e.actor_name = "operator".to_string();
        e.address = None;
    }
}
