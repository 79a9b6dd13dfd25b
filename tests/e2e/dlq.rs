//! `hookrelay dlq`: list, stats, show, replay by filter, purge with confirmation.

use axum::http::StatusCode;
use hookrelay::dlq::{DlqCommand, FilterArgs, run};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Receiver, Subscriber, TestApp};

/// `hookrelay dlq …` on this test's database and broker; what it prints.
async fn cli(app: &TestApp, cmd: DlqCommand) -> anyhow::Result<String> {
    run(&app.config, &app.store, cmd).await
}

#[tokio::test]
async fn operators_list_replay_and_purge_dead_deliveries() {
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let flaky = Receiver::failing_first(2).await;
    let broken = Receiver::replying(StatusCode::BAD_GATEWAY, "down").await;
    let (key, tenant) = app.tenant().await;
    let (flaky_id, _) = app.endpoint(&key, &tenant, &flaky.url, Some(&["a"])).await;
    let (broken_id, _) = app.endpoint(&key, &tenant, &broken.url, Some(&["b"])).await;
    let mut dead = Vec::new();
    for t in ["a", "a", "b"] {
        let e = app
            .event(&key, &tenant, json!({ "event_type": t, "payload": 1 }))
            .await;
        let d = app.settled_deliveries(&key, &tenant, &e, 1).await[0].clone();
        assert_eq!(d["status"], "dead");
        dead.push(d["id"].as_str().expect("id").to_string());
    }
    let by = |endpoint: &str| FilterArgs {
        endpoint: Some(endpoint.parse().expect("uuid")),
        ..Default::default()
    };

    let listed = cli(
        &app,
        DlqCommand::List {
            filter: FilterArgs::default(),
            limit: 50,
            json: true,
        },
    )
    .await
    .expect("list");
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 3);
    let stats = cli(
        &app,
        DlqCommand::Stats { filter: FilterArgs::default(), json: false },
    )
    .await
    .expect("stats");
    assert!(stats.ends_with("3 dead in all"), "{stats}");
    let shown = cli(
        &app,
        DlqCommand::Show { id: dead[2].parse().expect("uuid") },
    )
    .await
    .expect("show");
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(shown["attempts"][0]["response_status"], 502);
    assert_eq!(shown["event"]["payload"], 1);

    // Refusals: no filter without --all; purge without --yes.
    assert!(
        cli(
            &app,
            DlqCommand::Replay {
                id: None,
                filter: FilterArgs::default(),
                all: false
            }
        )
        .await
        .is_err()
    );
    let refused = cli(
        &app,
        DlqCommand::Purge { filter: by(&broken_id), all: false, yes: false },
    )
    .await
    .expect_err("needs --yes");
    assert!(refused.to_string().contains("would delete 1"), "{refused}");

    let replayed = cli(
        &app,
        DlqCommand::Replay { id: None, filter: by(&flaky_id), all: false },
    )
    .await
    .expect("replay");
    assert!(
        replayed.ends_with(": 2 dead deliveries are due now"),
        "{replayed}"
    );
    app.wait_for_delivered(2).await;
    assert_eq!(flaky.wait_for(4).await.len(), 4);

    let purged = cli(
        &app,
        DlqCommand::Purge { filter: by(&broken_id), all: false, yes: true },
    )
    .await
    .expect("purge");
    assert_eq!(purged, "purged 1 dead deliveries");
    assert_eq!(app.count("deliveries").await, 2);
    let stats = cli(
        &app,
        DlqCommand::Stats { filter: FilterArgs::default(), json: false },
    )
    .await
    .expect("stats");
    assert!(stats.ends_with("0 dead in all"), "{stats}");
}

#[tokio::test]
async fn the_admin_api_mirrors_the_dlq_commands() {
    use crate::helpers::ADMIN_TOKEN;
    let app = TestApp::builder()
        .config(|c| c.retry.max_attempts = Some(1))
        .start()
        .await;
    let broken = Receiver::replying(StatusCode::BAD_GATEWAY, "down").await;
    let Subscriber { key, tenant, endpoint } = app.subscriber(&broken.url).await;
    let e = app
        .event(&key, &tenant, json!({ "event_type": "x", "payload": 1 }))
        .await;
    let id = app.settled_deliveries(&key, &tenant, &e, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    assert_eq!(
        app.get("/v1/admin/dead", &key).await.0,
        StatusCode::UNAUTHORIZED,
        "producers cannot see across tenants"
    );
    let (status, list) = app
        .get(&format!("/v1/admin/dead?endpoint={endpoint}"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(
        app.get("/v1/admin/dead/stats", ADMIN_TOKEN).await.1["total"],
        1
    );
    assert_eq!(
        app.get(&format!("/v1/admin/deliveries/{id}"), ADMIN_TOKEN)
            .await
            .1["attempts"][0]["response_status"],
        502
    );

    assert_eq!(
        app.post("/v1/admin/dead/replay", ADMIN_TOKEN, json!({}))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, job) = app
        .post(
            "/v1/admin/dead/replay",
            ADMIN_TOKEN,
            json!({ "endpoint": endpoint }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["kind"], "dead_replay");
    let job = app
        .wait_for_json(
            &format!("/v1/jobs/{}", job["id"].as_str().expect("id")),
            ADMIN_TOKEN,
            "the replay job to finish",
            |j| j["status"] == "done",
        )
        .await;
    assert_eq!(job["done_count"], 1);
    broken.wait_for(2).await;
    app.wait_for_json(
        &format!("/v1/tenants/{tenant}/deliveries/{id}"),
        &key,
        "dead again",
        |d| d["status"] == "dead" && d["attempts"] == 2,
    )
    .await;

    assert_eq!(
        app.post("/v1/admin/dead/purge", ADMIN_TOKEN, json!({ "all": true }))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, purged) = app
        .post(
            "/v1/admin/dead/purge",
            ADMIN_TOKEN,
            json!({ "all": true, "confirm": true }),
        )
        .await;
    assert_eq!(purged["purged"], 1);
    assert_eq!(app.count("deliveries").await, 0);
}

#[tokio::test]
async fn broker_dead_letters_are_listed_requeued_and_purged_by_cli_and_api() {
    use hookrelay::dlq_broker::{BrokerCommand, run as broker};

    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let Subscriber { key, tenant, endpoint: _ } = app.subscriber(&receiver.url).await;
    let publisher = app.publisher();
    let ingest = app.config.topology().ingest_queue();
    let good = json!({ "tenant_id": tenant, "events": [
        { "id": uuid::Uuid::now_v7(), "event_type": "x", "payload": {}, "accepted_at": chrono::Utc::now() } ] });
    let ghost = json!({ "tenant_id": uuid::Uuid::new_v4(), "events": [] });
    for (body, why) in [(&good, "first"), (&ghost, "second")] {
        publisher
            .dead_letter(&ingest, body.to_string().as_bytes(), why)
            .await
            .expect("dead-lettered");
    }

    let listed = broker(
        &app.config,
        &app.store,
        BrokerCommand::List { limit: 50, json: true },
    )
    .await
    .expect("list");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["reason"], "first");
    assert_eq!(listed[0]["source"], ingest);
    let good_id = listed[0]["id"].as_str().expect("id").to_string();

    let (status, body) = app.get("/v1/admin/broker-dead", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 2);
    assert_eq!(body["data"][1]["reason"], "second");
    let (status, one) = app
        .get(&format!("/v1/admin/broker-dead/{good_id}"), ADMIN_TOKEN)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(one["body"].as_str().expect("body").contains(&tenant));
    let (status, _) = app.get("/v1/admin/broker-dead/nope", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/v1/admin/broker-dead", &key).await;
    assert!(
        status.is_client_error() && status != StatusCode::NOT_FOUND,
        "{status}"
    );

    // Requeue checks again: the good one goes on, the missing tenant's stays.
    let (status, report) = app
        .post(
            "/v1/admin/broker-dead/requeue",
            ADMIN_TOKEN,
            json!({ "all": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["requeued"], json!([good_id]));
    assert!(
        report["refused"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("does not exist")
    );
    receiver.wait_for(1).await;

    let (status, _) = app
        .post(
            "/v1/admin/broker-dead/purge",
            ADMIN_TOKEN,
            json!({ "all": true }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "purge needs confirm"
    );
    let refused = broker(
        &app.config,
        &app.store,
        BrokerCommand::Purge { ids: vec![], all: true, yes: false },
    )
    .await;
    assert!(refused.is_err(), "the CLI purge needs --yes");
    let out = broker(
        &app.config,
        &app.store,
        BrokerCommand::Purge { ids: vec![], all: true, yes: true },
    )
    .await
    .expect("purge");
    assert_eq!(out, "purged 1");
    let (_, body) = app.get("/v1/admin/broker-dead", ADMIN_TOKEN).await;
    assert_eq!(body["count"], 0);
}
