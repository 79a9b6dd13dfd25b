//! The API in-process, without a socket or a dispatcher, against a real database
//! (each test its own, cloned from a migrated template): what bad input and bad credentials get
//! back — a 4xx with `{"error": {"code", "message"}}` — and that they write nothing.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::Api;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    token: Option<String>,
    content_type: &'static str,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
}

fn case(
    name: &'static str,
    path: String,
    token: Option<&str>,
    body: Value,
    status: StatusCode,
    code: &'static str,
) -> Case {
    Case {
        name,
        method: "POST",
        path,
        token: token.map(str::to_string),
        content_type: "application/json",
        body: serde_json::to_vec(&body).expect("json"),
        status,
        code,
    }
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_errors_and_write_nothing() {
    let app = Api::fresh().await;
    let key = app.producer_key().await;
    let (status, body) = app
        .post("/v1/tenants", &key, json!({ "name": "Acme" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tenant = body["id"].as_str().expect("id").to_string();
    let (status, _) = app
        .post(
            "/v1/tenants",
            &key,
            json!({ "name": "Taken", "uid": "taken" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post(
            &format!("/v1/tenants/{tenant}/endpoints"),
            &key,
            json!({ "url": "https://example.com/hook" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let endpoint = body["id"].as_str().expect("id").to_string();
    let (tenants, endpoints, keys) = (
        app.count("tenants").await,
        app.count("endpoints").await,
        app.count("api_keys").await,
    );

    let events = format!("/v1/tenants/{tenant}/events");
    let k = Some(key.as_str());
    let big = "x".repeat(70 * 1024);
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({ "event_type": "a", "payload": 1 }))
        .collect();
    use StatusCode as S;
    let mut cases = vec![
        case(
            "no auth",
            "/v1/tenants".into(),
            None,
            json!({ "name": "n" }),
            S::UNAUTHORIZED,
            "unauthorized",
        ),
        case(
            "unknown key",
            "/v1/tenants".into(),
            Some("hr_nope"),
            json!({ "name": "n" }),
            S::UNAUTHORIZED,
            "unauthorized",
        ),
        case(
            "producer key on admin route",
            "/v1/api-keys".into(),
            k,
            json!({}),
            S::UNAUTHORIZED,
            "unauthorized",
        ),
        case(
            "a key scoped to a tenant named with a NUL",
            "/v1/api-keys".into(),
            Some(support::ADMIN),
            json!({ "tenants": ["\u{19}ö.\u{0}"] }),
            S::NOT_FOUND,
            "not_found",
        ),
        case(
            "a tenant path holding a NUL",
            "/v1/tenants/a%00b/endpoints".into(),
            k,
            json!({ "url": "https://example.com/" }),
            S::NOT_FOUND,
            "not_found",
        ),
        case(
            "tenant without name",
            "/v1/tenants".into(),
            k,
            json!({ "uid": "x" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "tenant name with a NUL",
            "/v1/tenants".into(),
            k,
            json!({ "name": "Acme\0" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "idempotency key with a NUL",
            events.clone(),
            k,
            json!({ "event_type": "a", "payload": {}, "idempotency_key": "k\0" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint description with a NUL",
            format!("/v1/tenants/{tenant}/endpoints"),
            k,
            json!({ "url": "https://example.com/hook", "description": "a\0b" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "rotation grace over 7 days",
            format!("/v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate"),
            k,
            json!({ "grace_period_seconds": 604801 }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "tenant blank name",
            "/v1/tenants".into(),
            k,
            json!({ "name": "  " }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "tenant bad uid",
            "/v1/tenants".into(),
            k,
            json!({ "name": "n", "uid": "a b" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "tenant uid taken",
            "/v1/tenants".into(),
            k,
            json!({ "name": "n", "uid": "taken" }),
            S::CONFLICT,
            "conflict",
        ),
        case(
            "tenant unknown field",
            "/v1/tenants".into(),
            k,
            json!({ "name": "n", "colour": 1 }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint bad url",
            format!("/v1/tenants/{tenant}/endpoints"),
            k,
            json!({ "url": "not a url" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint ftp url",
            format!("/v1/tenants/{tenant}/endpoints"),
            k,
            json!({ "url": "ftp://example.com/" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint empty types",
            format!("/v1/tenants/{tenant}/endpoints"),
            k,
            json!({ "url": "https://example.com/", "event_types": [] }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint bad pattern",
            format!("/v1/tenants/{tenant}/endpoints"),
            k,
            json!({ "url": "https://example.com/", "event_types": ["order.*.x"] }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint bad secret",
            format!("/v1/tenants/{tenant}/endpoints"),
            k,
            json!({ "url": "https://example.com/", "secret": "hunter2" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "endpoint unknown tenant",
            "/v1/tenants/nobody/endpoints".into(),
            k,
            json!({ "url": "https://example.com/" }),
            S::NOT_FOUND,
            "not_found",
        ),
        case(
            "event unknown tenant",
            "/v1/tenants/nobody/events".into(),
            k,
            json!({ "event_type": "a", "payload": 1 }),
            S::NOT_FOUND,
            "not_found",
        ),
        case(
            "event bad type",
            events.clone(),
            k,
            json!({ "event_type": "order..created", "payload": 1 }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "event no payload",
            events.clone(),
            k,
            json!({ "event_type": "a" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "event no type",
            events.clone(),
            k,
            json!({ "payload": 1 }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "event empty idempotency key",
            events.clone(),
            k,
            json!({ "event_type": "a", "payload": 1, "idempotency_key": "" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "event too large",
            events.clone(),
            k,
            json!({ "event_type": "a", "payload": big }),
            S::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        case(
            "batch empty",
            format!("{events}/batch"),
            k,
            json!({ "events": [] }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "batch too many",
            format!("{events}/batch"),
            k,
            json!({ "events": too_many }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "batch one bad",
            format!("{events}/batch"),
            k,
            json!({ "events": [{ "event_type": "ok", "payload": 1 }, { "event_type": "", "payload": 1 }] }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            "unknown route",
            "/v1/nothing".into(),
            k,
            json!({}),
            S::NOT_FOUND,
            "not_found",
        ),
        case(
            "wrong method",
            "/healthz".into(),
            k,
            json!({}),
            S::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    cases.push(Case {
        content_type: "application/json",
        body: b"{\"event_type\": \"a\", ".to_vec(),
        ..case(
            "malformed json",
            events.clone(),
            k,
            json!(null),
            S::BAD_REQUEST,
            "invalid_json",
        )
    });
    cases.push(Case {
        content_type: "text/plain",
        ..case(
            "not json",
            events.clone(),
            k,
            json!({ "event_type": "a", "payload": 1 }),
            S::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
    });
    cases.push(Case {
        method: "PATCH",
        ..case(
            "patch bad url",
            format!("/v1/tenants/{tenant}/endpoints/{endpoint}"),
            k,
            json!({ "url": "nope" }),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
    });
    cases.push(Case {
        method: "PATCH",
        ..case(
            "patch unknown endpoint",
            format!("/v1/tenants/{tenant}/endpoints/{}", uuid::Uuid::nil()),
            k,
            json!({ "description": "d" }),
            S::NOT_FOUND,
            "not_found",
        )
    });
    cases.push(Case {
        method: "GET",
        ..case(
            "bad cursor",
            format!("/v1/tenants/{tenant}/endpoints?after=zzz"),
            k,
            json!(null),
            S::BAD_REQUEST,
            "bad_request",
        )
    });
    cases.push(Case {
        method: "GET",
        ..case(
            "bad limit",
            format!("/v1/tenants/{tenant}/endpoints?limit=-1"),
            k,
            json!(null),
            S::BAD_REQUEST,
            "bad_request",
        )
    });
    cases.push(Case {
        method: "GET",
        ..case(
            "event id not an id",
            format!("/v1/tenants/{tenant}/events/123"),
            k,
            json!(null),
            S::NOT_FOUND,
            "not_found",
        )
    });

    for c in &cases {
        let body = if c.method == "GET" {
            Vec::new()
        } else {
            c.body.clone()
        };
        let (status, body) = app
            .send(c.method, &c.path, c.token.as_deref(), c.content_type, body)
            .await;
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert_eq!(body["error"]["code"], c.code, "{}: {body}", c.name);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}: {body}",
            c.name
        );
    }
    assert_eq!(
        (
            app.count("tenants").await,
            app.count("endpoints").await,
            app.count("api_keys").await,
            app.count("events").await,
        ),
        (tenants, endpoints, keys, 0)
    );
}
