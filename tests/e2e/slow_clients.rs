//! The HTTP server against slow and greedy clients, on the real binary: a
//! thousand connections holding half a request head do not stop anyone else
//! and are closed at the header timeout; an idle keep-alive connection is closed
//! at the idle timeout; a body that does not arrive in time fails the request;
//! bodies beyond the byte budget are refused before they are read.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, PATIENCE, TestApp, spawn_ready};

/// Reads until the server closes the connection; what it sent before that.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&all).into_owned(),
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

fn address(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn a_thousand_slow_heads_neither_stop_others_nor_stay_open() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let mut gateway = app.hookrelay_command("gateway");
    gateway
        .env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("HOOKRELAY_HTTP_HEADER_TIMEOUT", "2s");
    let (_gateway, base) = spawn_ready(gateway).await;
    let addr = address(&base);

    let mut slow = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"POST /v1/tenants/acme/events HTTP/1.1\r\nHost: x\r\nContent-Ty")
            .await
            .expect("half a head");
        slow.push(s);
    }
    let opened = tokio::time::Instant::now();
    // Everyone else is served meanwhile.
    let http = reqwest::Client::new();
    for _ in 0..50 {
        let res = http
            .get(format!("{base}/v1/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("a normal request");
        assert_eq!(res.status().as_u16(), 200);
    }
    // Every slow connection is closed by the server, with no answer, once its
    // header time is up (2 s, plus a second's grace).
    let closed = futures_util::future::join_all(
        slow.iter_mut()
            .map(|s| async move { tokio::time::timeout(PATIENCE, until_closed(s)).await }),
    )
    .await;
    let waited = opened.elapsed();
    assert!(
        closed
            .iter()
            .all(|c| c.as_ref().is_ok_and(String::is_empty)),
        "every slow connection was closed without an answer"
    );
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "closed at the header timeout, not before and not much after: {waited:?}"
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "hookrelay_http_limited_total{reason=\"header_timeout\"} 1000"),
        "{metrics}"
    );
}

#[tokio::test]
async fn idle_connections_and_late_bodies_are_cut_off() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let mut gateway = app.hookrelay_command("gateway");
    gateway
        .env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("HOOKRELAY_HTTP_IDLE_TIMEOUT", "2s")
        .env("HOOKRELAY_HTTP_BODY_TIMEOUT", "1s");
    let (_gateway, base) = spawn_ready(gateway).await;
    let addr = address(&base);

    // A kept-alive connection is answered, then closed once idle for 2 s.
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let answered = tokio::time::Instant::now();
    let text = tokio::time::timeout(PATIENCE, until_closed(&mut idle))
        .await
        .expect("closed in time");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        answered.elapsed() >= Duration::from_millis(1500),
        "kept open while the idle timeout ran"
    );

    // A body promised and not sent fails its request at the body timeout.
    let mut late = TcpStream::connect(&addr).await.expect("connect");
    late.write_all(
        format!(
            "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
        )
        .as_bytes(),
    )
    .await
    .expect("part of a body");
    let text = tokio::time::timeout(PATIENCE, until_closed(&mut late))
        .await
        .expect("answered in time");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}

#[tokio::test]
async fn bodies_beyond_the_budget_are_refused_before_they_are_read() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let mut gateway = app.hookrelay_command("gateway");
    // 16 MiB batches (the default limit) against a 64 MiB budget: four fit.
    gateway.env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN).env(
        "HOOKRELAY_HTTP_BODY_BUDGET_BYTES",
        (64u64 << 20).to_string(),
    );
    let (child, base) = spawn_ready(gateway).await;
    let addr = address(&base);
    let (key, tenant) = {
        let (status, key) = app
            .post("/v1/api-keys", ADMIN_TOKEN, serde_json::json!({}))
            .await;
        assert_eq!(status.as_u16(), 201, "{key}");
        let key = key["key"].as_str().expect("key").to_string();
        let (status, t) = app
            .post("/v1/tenants", &key, serde_json::json!({ "name": "Big" }))
            .await;
        assert_eq!(status.as_u16(), 201, "{t}");
        (key, t["id"].as_str().expect("id").to_string())
    };
    // Small bodies count for what they are: twenty at once, their heads first,
    // all fit (were each counted as a whole batch, four would).
    let small = r#"{"name":"a tenant of a small body"}"#;
    let mut waiting = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(
            format!(
                "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                small.len()
            )
            .as_bytes(),
        )
        .await
        .expect("head");
        waiting.push(s);
    }
    for s in &mut waiting {
        s.write_all(small.as_bytes()).await.expect("body");
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
            .await
            .expect("answered")
            .expect("read");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    }
    let length = 16usize << 20;
    let head = format!(
        "POST /v1/tenants/{tenant}/events/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    // A hundred heads at once; each connection's first answer is awaited apart.
    let mut writers = Vec::new();
    let mut answers = tokio::task::JoinSet::new();
    for n in 0..100 {
        let s = TcpStream::connect(&addr).await.expect("connect");
        let (mut read, mut write) = s.into_split();
        write.write_all(head.as_bytes()).await.expect("head");
        writers.push(write);
        answers.spawn(async move {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        all.extend_from_slice(&buf[..k]);
                        if all.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            (n, String::from_utf8_lossy(&all).into_owned())
        });
    }
    // Ninety-six are refused at once, before a byte of their body is sent.
    let mut answered = std::collections::HashSet::new();
    for _ in 0..96 {
        let (n, text) = tokio::time::timeout(PATIENCE, answers.join_next())
            .await
            .expect("refused in time")
            .expect("a task")
            .expect("joined");
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1"),
            "{text}"
        );
        answered.insert(n);
    }
    // The other four hold the budget and wait for their bodies; read in full, they
    // are answered (a body that is not a batch: 400).
    let junk = vec![b' '; length];
    for (n, w) in writers.iter_mut().enumerate() {
        if !answered.contains(&n) {
            w.write_all(&junk).await.expect("body");
        }
    }
    for _ in 0..4 {
        let (n, text) = tokio::time::timeout(PATIENCE, answers.join_next())
            .await
            .expect("answered in time")
            .expect("a task")
            .expect("joined");
        assert!(!answered.contains(&n));
        assert!(text.starts_with("HTTP/1.1 400"), "an admitted body: {text}");
    }
    // The process never held much more than the budget.
    let pid = child.id().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    assert!(
        peak_kib < (64 + 160) * 1024,
        "peak RSS {peak_kib} KiB for a 64 MiB budget"
    );
}

#[tokio::test]
async fn http2_is_served_within_its_header_limit() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let mut gateway = app.hookrelay_command("gateway");
    gateway
        .env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("HOOKRELAY_HTTP2_MAX_HEADER_BYTES", "4096");
    let (_gateway, base) = spawn_ready(gateway).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let res = h2
        .get(format!("{base}/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("an HTTP/2 request");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status().as_u16(), 200);
    // A header list past the limit is refused; the connection serves on.
    let refused = h2
        .get(format!("{base}/healthz"))
        .header("x-padding", "a".repeat(8192))
        .send()
        .await;
    assert!(
        refused
            .as_ref()
            .map_or(true, |r| r.status().as_u16() == 431),
        "{refused:?}"
    );
    let res = h2
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("again");
    assert_eq!(res.status().as_u16(), 200);
}
