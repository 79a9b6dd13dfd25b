//! The API's contract: the OpenAPI document assembled from every route's
//! `#[utoipa::path]` and the bodies in `bodies`, the error responses every
//! operation can give, the two auth schemes, and the few request schemas a type
//! cannot express (fields that constrain each other), written here and nowhere else.

use hookrelay_core::model::{ApiKey, Attempt, Delivery, Endpoint, Event, Job, Tenant};
use hookrelay_core::queue::RequeueReport;
use hookrelay_core::store::AuditEntry;
use hookrelay_core::{filter, validation};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::bodies::{ErrorBody, ErrorDetail};
use super::{
    admin, api_keys, audit, broker_dead, console_links, console_sessions, deliveries,
    delivery_controls, endpoint_actions, endpoints, events, health, replay, tenant_deletion,
    tenant_limits, tenants,
};

fn filter_scope() -> serde_json::Value {
    let uuid = serde_json::json!({ "type": "string", "format": "uuid" });
    let time = serde_json::json!({ "type": "string", "format": "date-time" });
    let text = serde_json::json!({ "type": "string" });
    let one = |name: &str, schema: &serde_json::Value| serde_json::json!({ "required": [name], "properties": { name: schema } });
    serde_json::json!({
        "allOf": [
            { "$ref": "#/components/schemas/Filter" },
            {
                "description": "At least one filter, or `all: true`",
                "anyOf": [
                    one("tenant", &uuid), one("endpoint", &uuid), one("event_type", &text),
                    one("since", &time), one("until", &time), one("reason", &text),
                    one("all", &serde_json::json!({ "const": true })),
                ]
            }
        ]
    })
}

fn selection() -> serde_json::Value {
    serde_json::json!({
        "allOf": [
            { "$ref": "#/components/schemas/Selection" },
            {
                "description": "Either `ids` (1 to 1,000) or `all: true`",
                "anyOf": [
                    {
                        "required": ["all"],
                        "properties": { "all": { "const": true }, "ids": { "maxItems": 0 } }
                    },
                    {
                        "required": ["ids"],
                        "properties": { "all": { "const": false }, "ids": { "minItems": 1, "maxItems": 1000 } }
                    }
                ]
            }
        ]
    })
}

fn confirmed(mut scope: serde_json::Value) -> serde_json::Value {
    if let Some(all) = scope["allOf"].as_array_mut() {
        all.push(serde_json::json!({
            "description": "`confirm: true`: purging deletes for good",
            "required": ["confirm"],
            "properties": { "confirm": { "const": true } }
        }));
    }
    scope
}

/// The payload filter language (`core/src/filter.rs`) as schemas, so a filter
/// the schema admits is one the server takes, bar the limits on its size, depth
/// and count of conditions: (component name, schema). No key or string may hold
/// a NUL, and numbers stay within `FILTER_NUMBER_LIMIT`: what PostgreSQL cannot
/// store and give back as it was.
fn payload_filter() -> [(&'static str, serde_json::Value); 3] {
    let schema = |name: &str| serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    let (filter, condition, value) = (
        schema("PayloadFilter"),
        schema("FilterCondition"),
        schema("FilterValue"),
    );
    let text = serde_json::json!({ "type": "string", "pattern": "^[^\\u0000]*$" });
    let limit = validation::FILTER_NUMBER_LIMIT;
    let number = serde_json::json!({ "type": "number", "minimum": -limit, "maximum": limit });
    let flag = serde_json::json!({ "type": ["boolean", "null"] });
    let values = serde_json::json!({ "type": "array", "items": value });
    let filters = serde_json::json!({ "type": "array", "minItems": 1, "items": filter });
    let comparable = serde_json::json!({ "anyOf": [number, text] });
    let list = serde_json::json!({ "type": "array", "maxItems": filter::MAX_LIST, "items": value });
    let path = format!(
        "^(\\$(and|or|not|event_type)|[^$.\\u0000][^.\\u0000]*(\\.[^.\\u0000]+){{0,{}}})$",
        filter::MAX_PATH_SEGMENTS - 1
    );
    [
        (
            "PayloadFilter",
            serde_json::json!({
                "description": format!(
                    "A payload filter: keys are dotted paths into the payload (a number indexes an array) \
                     or `$event_type`, values a literal to equal or an object of operators; every key must \
                     hold; `$and`, `$or` and `$not` combine filters. At most {} bytes, {} levels deep and {} \
                     conditions.",
                    filter::MAX_BYTES, filter::MAX_DEPTH, filter::MAX_CONDITIONS
                ),
                "type": "object",
                "minProperties": 1,
                "maxProperties": filter::MAX_CONDITIONS,
                "propertyNames": { "pattern": path },
                "properties": { "$and": filters, "$or": filters, "$not": filter, "$event_type": condition },
                "additionalProperties": condition,
            }),
        ),
        (
            "FilterCondition",
            serde_json::json!({
                "description": "A literal the value must equal, or an object of operators that must all hold",
                "anyOf": [
                    text, number, flag, values,
                    // An object whose keys do not start with `$` is a literal too.
                    {
                        "type": "object",
                        "propertyNames": { "pattern": "^([^$\\u0000][^\\u0000]*)?$" },
                        "additionalProperties": value
                    },
                    {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": false,
                        "properties": {
                            "$eq": value, "$ne": value,
                            "$gt": comparable, "$gte": comparable, "$lt": comparable, "$lte": comparable,
                            "$in": list, "$nin": list,
                            "$exists": { "type": "boolean" },
                            "$prefix": text,
                        }
                    }
                ]
            }),
        ),
        (
            "FilterValue",
            serde_json::json!({
                "description": "A JSON value a filter compares with",
                "anyOf": [
                    text, number, flag, values,
                    {
                        "type": "object",
                        "propertyNames": { "pattern": "^[^\\u0000]*$" },
                        "additionalProperties": value
                    }
                ]
            }),
        ),
    ]
}

/// Request bodies that carry a payload filter: their `filter` is a `PayloadFilter`.
const FILTERED_BODIES: [&str; 3] = ["CreateEndpoint", "UpdateEndpoint", "FilterTestIn"];

/// Request bodies whose fields constrain each other, which derives cannot say:
/// (operation path, schema), set into the document as written here.
fn written_bodies() -> [(&'static str, serde_json::Value); 4] {
    [
        ("/v1/admin/dead/replay", filter_scope()),
        ("/v1/admin/dead/purge", confirmed(filter_scope())),
        ("/v1/admin/broker-dead/requeue", selection()),
        ("/v1/admin/broker-dead/purge", confirmed(selection())),
    ]
}

/// Adds the auth schemes and, to every operation, the error responses it can give.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                "producer_key",
                "A producer API key (`hr_…`) from `POST /v1/api-keys`",
            ),
            (
                "admin_token",
                "The operator's HOOKRELAY_ADMIN_TOKEN (also opens every producer route)",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
        let error = |what: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        ))))
                        .build(),
                )
                .build()
                .into()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                // Unique across the document: the tag names the resource.
                if let (Some(tag), Some(id)) =
                    (op.tags.as_ref().and_then(|t| t.first()), &op.operation_id)
                {
                    op.operation_id = Some(format!("{}_{id}", tag.replace('-', "_")));
                }
                // The health routes need no credentials: say so.
                op.security.get_or_insert_with(|| {
                    vec![utoipa::openapi::security::SecurityRequirement::default()]
                });
                let has_query =
                    op.parameters.iter().flatten().any(|p| {
                        matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                    });
                let mut add = |code: &str, what: &str| {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| error(what));
                };
                if path.starts_with("/v1/") {
                    add("401", "No credentials, or not the ones this route needs");
                    add(
                        "403",
                        "The key reaches this tenant but lacks the permission this route needs (`forbidden`)",
                    );
                    add(
                        "429",
                        "Too many failed authentications from this address, or the tenant's ingest rate is spent; retry after `retry-after` seconds",
                    );
                    add(
                        "503",
                        "The database or the broker is unreachable; retry after `retry-after` seconds",
                    );
                }
                if path.contains('{') {
                    add("404", "No such resource (or not this tenant's)");
                }
                if has_query {
                    add("400", "A query parameter or the cursor is malformed");
                }
                if op.request_body.is_some() {
                    add("400", "The body is not JSON");
                    add("413", "The body is larger than the configured limit");
                    add("415", "The body is not sent as application/json");
                    add("422", "A field is missing, mistyped or out of range");
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrelay",
        description = "A reliable webhook delivery gateway: producers send events, hookrelay delivers them to every subscribed endpoint as Standard Webhooks signed POSTs, with retries, rate limits and circuit breakers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz, health::readyz, health::metrics,
        api_keys::list, api_keys::create, api_keys::revoke,
        tenants::list, tenants::create, tenants::show,
        endpoints::list, endpoints::create, endpoints::show, endpoints::update, endpoints::remove, endpoints::secret,
        endpoint_actions::rotate, endpoint_actions::test,
        delivery_controls::backlog, delivery_controls::cancel_backlog, delivery_controls::test_filter,
        delivery_controls::cancel_delivery, delivery_controls::cancel_event,
        events::ingest, events::ingest_batch, events::list, events::show, events::deliveries,
        deliveries::list, deliveries::show, deliveries::attempts,
        replay::replay, replay::recover, replay::job,
        console_links::create, console_sessions::list, console_sessions::end,
        admin::list, admin::stats, admin::replay, admin::purge, admin::show,
        broker_dead::list, broker_dead::show, broker_dead::requeue, broker_dead::purge,
        audit::list_all, audit::list_tenant, tenant_limits::set,
        tenant_deletion::delete_tenant, tenant_deletion::show_deletion,
    ),
    components(schemas(ErrorBody, ErrorDetail, AuditEntry, Tenant, Endpoint, Event, Delivery, Attempt, Job, ApiKey, RequeueReport, admin::Filter, broker_dead::Selection)),
    servers((url = "http://127.0.0.1:8080", description = "A local installation (HOOKRELAY_LISTEN)")),
    modifiers(&Contract),
)]
pub struct ApiDoc;

/// The OpenAPI document, as served at `/openapi.json` and committed as `openapi.json`.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The document as pretty JSON, the way `openapi.json` holds it.
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(document()).expect("the document serializes");
    for (path, schema) in written_bodies() {
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"] = schema;
    }
    for (name, schema) in payload_filter() {
        doc["components"]["schemas"][name] = schema;
    }
    for (name, schema) in super::webhooks::schemas() {
        doc["components"]["schemas"][name] = schema;
    }
    doc["webhooks"] = super::webhooks::webhooks();
    for body in FILTERED_BODIES {
        let field = &mut doc["components"]["schemas"][body]["properties"]["filter"];
        let description = field["description"].take();
        *field = serde_json::json!({
            "description": description,
            "anyOf": [{ "$ref": "#/components/schemas/PayloadFilter" }, { "type": "null" }]
        });
    }
    let mut text = serde_json::to_string_pretty(&doc).expect("the document serializes");
    text.push('\n');
    text
}

/// `GET /openapi.json`.
pub async fn serve() -> impl axum::response::IntoResponse {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        TEXT.get_or_init(document_json).as_str(),
    )
}
