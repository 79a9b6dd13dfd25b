//! Mutual TLS and custom CAs towards receivers, with the throwaway CA that
//! `deploy/local/test.sh` makes: a receiver that demands a client certificate
//! takes our deliveries only from an endpoint that carries one, and a receiver
//! whose certificate a private CA signed is reached only by an endpoint that
//! names that CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestApp, eventually};

fn tls_dir() -> PathBuf {
    std::env::var("HOOKRELAY_TEST_TLS_DIR")
        .unwrap_or_else(|_| {
            panic!("HOOKRELAY_TEST_TLS_DIR is unset: run deploy/local/test.sh, which makes the CA")
        })
        .into()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(tls_dir().join(name)).expect("certificate file")
}

/// An HTTPS receiver with the CA's server certificate; with `client_ca`, it
/// demands a client certificate that CA signed. Counts the requests it answered.
async fn receiver(client_ca: bool) -> (String, Arc<AtomicUsize>) {
    hookrelay_dispatcher::client::install_tls_provider();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(read("server.pem").as_bytes())
            .collect::<Result<_, _>>()
            .expect("server chain");
    let key = PrivateKeyDer::from_pem_slice(read("server.key").as_bytes()).expect("server key");
    let builder = rustls::ServerConfig::builder();
    let builder = if client_ca {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(read("ca.pem").as_bytes()) {
            roots.add(ca.expect("ca")).expect("root");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(chain, key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "https://127.0.0.1:{}/hook",
        listener.local_addr().expect("addr").port()
    );
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // One request at a time on the connection: headers, then the body.
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + length {
                            break;
                        }
                        buf.drain(..end + 4 + length);
                        count.fetch_add(1, Ordering::SeqCst);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tls.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, answered)
}

async fn endpoint(app: &TestApp, key: &str, tenant: &str, url: &str, tls: Option<Value>) -> String {
    let mut body = json!({ "url": url });
    if let Some(tls) = tls {
        body["tls"] = tls;
    }
    let (status, created) = app
        .post(&format!("/v1/tenants/{tenant}/endpoints"), key, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    if created.get("tls").is_some_and(|t| !t.is_null()) {
        assert!(created["tls"].get("client_key").is_none(), "{created}");
    }
    created["id"].as_str().expect("id").to_string()
}

/// The first attempt of the endpoint's delivery: (status, error).
async fn first_attempt(app: &TestApp, endpoint: &str) -> (String, Option<String>) {
    let id: uuid::Uuid = endpoint.parse().expect("uuid");
    eventually("the endpoint's first attempt", || async {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT d.status::text, a.error FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.endpoint_id = $1 ORDER BY a.created_at LIMIT 1",
        )
        .bind(id)
        .fetch_optional(app.store.pool())
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no attempt yet".to_string())
    })
    .await
}

#[tokio::test]
async fn client_certificates_and_private_cas_decide_who_is_reached() {
    let app = TestApp::spawn().await;
    let (key, tenant) = app.tenant().await;
    let (mutual, mutual_answered) = receiver(true).await;
    let (private, private_answered) = receiver(false).await;
    let identity = json!({
        "client_certificate": read("client.pem"), "client_key": read("client.key"), "ca_bundle": read("ca.pem"),
    });
    let with_cert = endpoint(&app, &key, &tenant, &mutual, Some(identity)).await;
    let without_cert = endpoint(
        &app,
        &key,
        &tenant,
        &mutual,
        Some(json!({ "ca_bundle": read("ca.pem") })),
    )
    .await;
    let own_ca = endpoint(
        &app,
        &key,
        &tenant,
        &private,
        Some(json!({ "ca_bundle": read("ca.pem") })),
    )
    .await;
    let system_roots = endpoint(&app, &key, &tenant, &private, None).await;
    let wrong_ca = endpoint(
        &app,
        &key,
        &tenant,
        &private,
        Some(json!({ "ca_bundle": read("wrong-ca.pem") })),
    )
    .await;
    app.event(
        &key,
        &tenant,
        json!({ "event_type": "order.created", "payload": {} }),
    )
    .await;

    assert_eq!(
        first_attempt(&app, &with_cert).await,
        ("delivered".into(), None)
    );
    assert_eq!(
        first_attempt(&app, &own_ca).await,
        ("delivered".into(), None)
    );
    for refused in [&without_cert, &system_roots, &wrong_ca] {
        let (status, error) = first_attempt(&app, refused).await;
        assert_eq!(status, "failed", "{refused}");
        let error = error.unwrap_or_default().to_ascii_lowercase();
        assert!(error.contains("certificate"), "{refused}: {error}");
    }
    assert_eq!(
        mutual_answered.load(Ordering::SeqCst),
        1,
        "only the endpoint with a certificate"
    );
    assert_eq!(
        private_answered.load(Ordering::SeqCst),
        1,
        "only the endpoint naming the CA"
    );

    // The key is never shown, and a key that does not fit its certificate is refused.
    let (_, shown) = app
        .get(&format!("/v1/tenants/{tenant}/endpoints/{with_cert}"), &key)
        .await;
    assert_eq!(shown["tls"]["client_key_set"], true);
    assert!(!shown.to_string().contains("PRIVATE KEY"), "{shown}");
    let (status, body) = app
        .patch(
            &format!("/v1/tenants/{tenant}/endpoints/{with_cert}"),
            &key,
            json!({ "tls": { "client_certificate": read("client.pem"), "client_key": read("server.key") } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM endpoints e WHERE e::text LIKE '%PRIVATE KEY%'")
            .fetch_one(app.store.pool())
            .await
            .expect("search");
    assert_eq!(stored, 0, "the key is stored encrypted only");
}
