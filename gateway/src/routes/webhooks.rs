//! The contract's `webhooks` (OpenAPI 3.1): the signed request every subscriber
//! receives, and each of hookrelay's operational events with its payload schema.

use hookrelay_core::operational::{
    self, CircuitOpened, DeadLettersGrowing, DeliveryDead, EndpointDisabled, EndpointFailing,
    EndpointNotice, EndpointPaused,
};
use serde_json::{Value, json};
use utoipa::PartialSchema;

/// The operational events' `data` schemas, by component name.
pub fn schemas() -> Vec<(&'static str, Value)> {
    let value = |s| serde_json::to_value(s).expect("schemas serialize");
    vec![
        ("EndpointDisabled", value(EndpointDisabled::schema())),
        ("EndpointFailing", value(EndpointFailing::schema())),
        ("EndpointNotice", value(EndpointNotice::schema())),
        ("CircuitOpened", value(CircuitOpened::schema())),
        ("DeliveryDead", value(DeliveryDead::schema())),
        ("DeadLettersGrowing", value(DeadLettersGrowing::schema())),
        ("EndpointPaused", value(EndpointPaused::schema())),
    ]
}

fn signed_headers() -> Value {
    let header = |name: &str, description: &str, schema: Value| json!({ "name": name, "in": "header", "required": true, "description": description, "schema": schema });
    json!([
        header(
            "webhook-id",
            "The delivery's id, the same on every retry and replay: dedupe on it",
            json!({ "type": "string", "format": "uuid" })
        ),
        header(
            "webhook-timestamp",
            "Unix seconds when this attempt was signed",
            json!({ "type": "string", "pattern": "^[0-9]+$" })
        ),
        header(
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`, one per active secret, space-separated",
            json!({ "type": "string" })
        ),
    ])
}

fn answered() -> Value {
    json!({
        "2XX": { "description": "Delivered" },
        "default": { "description": "Any other answer, or none in time, fails the attempt: it is retried with backoff (`410` disables the endpoint)" },
    })
}

/// The `webhooks` object.
pub fn webhooks() -> Value {
    let mut all = serde_json::Map::new();
    all.insert(
        "delivery".into(),
        json!({ "post": {
            "operationId": "webhook_delivery",
            "security": [],
            "summary": "An event, delivered",
            "description": "What every endpoint receives: the event's payload byte for byte, signed (Standard Webhooks), with the endpoint's custom headers and authentication.",
            "parameters": signed_headers(),
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "description": "The producer's payload" } } } },
            "responses": answered(),
        }}),
    );
    for (event_type, summary, data) in operational::TYPES {
        let payload = json!({
            "type": "object",
            "required": ["type", "occurred_at", "data"],
            "properties": {
                "type": { "const": event_type },
                "occurred_at": { "type": "string", "format": "date-time" },
                "data": { "$ref": format!("#/components/schemas/{data}") },
            },
        });
        all.insert(
            (*event_type).into(),
            json!({ "post": {
                "operationId": format!("webhook_{}", event_type.trim_start_matches(operational::PREFIX).replace('.', "_")),
                "security": [],
                "summary": summary,
                "description": format!("Operational event `{event_type}`, delivered like any event (signed, retried, on record) to the endpoints of the tenant it is about that subscribe to it by name or a `hookrelay.` pattern, and to those of the operations tenant (`HOOKRELAY_OPERATIONS_TENANT`). Never raised about an endpoint that receives operational events."),
                "parameters": signed_headers(),
                "requestBody": { "required": true, "content": { "application/json": { "schema": payload } } },
                "responses": answered(),
            }}),
        );
    }
    Value::Object(all)
}
