//! The API explorer at `/docs` renders the contract in a real browser, offline,
//! under its Content-Security-Policy (`console/browser/docs.test.mjs`).

use crate::helpers::{TestApp, browser_test};

#[tokio::test]
async fn the_api_explorer_renders_offline_under_its_csp() {
    let app = TestApp::builder().without_dispatcher().start().await;
    let res = app
        .http
        .get(app.url("/docs"))
        .send()
        .await
        .expect("GET /docs");
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = res.text().await.expect("html");
    assert!(
        page.contains("/docs/redoc.standalone.js") && page.contains("/openapi.json"),
        "the explorer's script is missing (deploy/local/test.sh installs it): {page}"
    );
    browser_test("docs.test.mjs", &[("DOCS_BASE", &app.url(""))]).await;
}
