//! The load harness as a guard: a few thousand events through a dispatcher
//! replacement, verified by the harness's own signature-checking receivers.

use hookrelay_loadtest::Options;
use tokio_util::sync::CancellationToken;

use crate::helpers::{ADMIN_TOKEN, TestApp};

#[tokio::test]
async fn a_few_thousand_events_survive_a_dispatcher_restart_with_nothing_lost() {
    let mut app = TestApp::spawn().await;
    let opts = Options {
        api: vec![app.base.clone()],
        admin_token: ADMIN_TOKEN.into(),
        events: 3000,
        rate: None,
        concurrency: Some(16),
        batch: 10,
        tenants: 2,
        endpoints: 4,
        fanout: 2,
        payload_bytes: 256,
        deadline: 60,
        receiver_ports: 2,
        behaviours: vec![],
        endpoint_json: None,
        gateway_pid: None,
        json: true,
        quiet: true,
    };
    let run = tokio::spawn(hookrelay_loadtest::run(opts, CancellationToken::new()));
    // The fault: replace the dispatcher while deliveries are flowing.
    app.wait_for_delivered(300).await;
    app.stop_dispatcher().await;
    app.start_dispatcher();

    let report = run.await.expect("harness task").expect("harness run");
    assert_eq!(report.accepted, 3000, "{report:?}");
    assert_eq!(report.expected, 6000);
    assert_eq!(report.missing, 0, "{report:?}");
    assert_eq!(report.delivered, 6000);
    assert_eq!(report.bad_signatures, 0);
    assert!(report.passed());
}
