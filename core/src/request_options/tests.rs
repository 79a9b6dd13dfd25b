//! Request options: what is refused, how secret values are kept apart and merged.

use super::*;

fn header(name: &str, value: Option<&str>, secret: bool) -> HeaderInput {
    HeaderInput {
        name: name.into(),
        value: value.map(Into::into),
        secret,
    }
}

fn with_headers(list: Vec<HeaderInput>) -> OptionsChange {
    OptionsChange {
        headers: Some(Some(list)),
        ..OptionsChange::default()
    }
}

fn targets() -> TargetPolicy {
    TargetPolicy::allow_everything()
}

#[test]
fn secret_header_values_are_kept_apart_and_shown_redacted() {
    let o = with_headers(vec![
        header("X-Team", Some("a"), false),
        header("X-Api-Key", Some("k1"), true),
    ])
    .new_options(&targets())
    .expect("valid");
    assert_eq!(
        o.headers[0],
        Header {
            name: "X-Team".into(),
            value: "a".into(),
            secret: false
        }
    );
    assert_eq!(
        o.headers[1],
        Header {
            name: "X-Api-Key".into(),
            value: REDACTED.into(),
            secret: true
        }
    );
    assert_eq!(
        o.secrets.headers.get("X-Api-Key").map(String::as_str),
        Some("k1")
    );
    // A change that leaves the secret's value out keeps it.
    let kept = with_headers(vec![header("X-Api-Key", None, true)])
        .apply(&targets(), &o)
        .expect("valid");
    assert_eq!(
        kept.secrets.headers.get("X-Api-Key").map(String::as_str),
        Some("k1")
    );
    assert_eq!(kept.headers.len(), 1);
    let err = with_headers(vec![header("X-New", None, true)]).apply(&targets(), &o);
    assert!(err.is_err(), "a new secret header needs its value");
}

#[test]
fn headers_the_request_owns_are_refused() {
    for name in [
        "Host",
        "content-type",
        "Webhook-Signature",
        "Transfer-Encoding",
        "Connection",
    ] {
        let err = with_headers(vec![header(name, Some("x"), false)]).new_options(&targets());
        assert!(err.is_err(), "{name} refused");
    }
    for (name, value) in [("bad name", "x"), ("X-A", "line\r\nbreak"), ("X-A", "é")] {
        let err = with_headers(vec![header(name, Some(value), false)]).new_options(&targets());
        assert!(err.is_err(), "{name:?}: {value:?} refused");
    }
    let twice = with_headers(vec![
        header("X-A", Some("1"), false),
        header("x-a", Some("2"), false),
    ]);
    assert!(twice.new_options(&targets()).is_err());
    let many = (0..=MAX_HEADERS)
        .map(|i| header(&format!("X-{i}"), Some("v"), false))
        .collect();
    assert!(with_headers(many).new_options(&targets()).is_err());
    let change = OptionsChange {
        headers: Some(Some(vec![header("Authorization", Some("x"), true)])),
        auth: Some(Some(AuthInput::Bearer { token: "t".into() })),
        ..OptionsChange::default()
    };
    assert!(
        change.new_options(&targets()).is_err(),
        "authorization beside auth"
    );
}

#[test]
fn auth_keeps_its_secret_apart() {
    let change = OptionsChange {
        auth: Some(Some(AuthInput::Basic {
            username: "u".into(),
            password: "p".into(),
        })),
        ..OptionsChange::default()
    };
    let o = change.new_options(&targets()).expect("valid");
    assert_eq!(o.auth, Some(Auth::Basic { username: "u".into() }));
    assert_eq!(o.secrets.credential.as_deref(), Some("p"));
    let shown = serde_json::to_string(&o.auth).expect("json");
    assert!(!shown.contains("\"p\""), "{shown}");
    let removed = OptionsChange { auth: Some(None), ..OptionsChange::default() }
        .apply(&targets(), &o)
        .expect("valid");
    assert_eq!((removed.auth, removed.secrets.credential), (None, None));
    let colon = OptionsChange {
        auth: Some(Some(AuthInput::Basic {
            username: "a:b".into(),
            password: "p".into(),
        })),
        ..OptionsChange::default()
    };
    assert!(colon.new_options(&targets()).is_err());
}

#[test]
fn an_oauth2_token_url_follows_the_address_rules() {
    let oauth = |url: &str| OptionsChange {
        auth: Some(Some(AuthInput::Oauth2 {
            token_url: url.into(),
            client_id: "id".into(),
            client_secret: "s".into(),
            scope: Some(String::new()),
            audience: None,
            client_auth: ClientAuth::Basic,
        })),
        ..OptionsChange::default()
    };
    let strict = TargetPolicy::default();
    assert!(
        oauth("http://127.0.0.1:9/token")
            .new_options(&strict)
            .is_err(),
        "loopback refused"
    );
    assert!(
        oauth("ftp://example.com/token")
            .new_options(&strict)
            .is_err()
    );
    let o = oauth("https://auth.example.com/token")
        .new_options(&strict)
        .expect("public");
    assert!(
        matches!(o.auth, Some(Auth::Oauth2 { scope: None, .. })),
        "an empty scope is none"
    );
}

#[test]
fn tls_needs_pem_that_parses() {
    let bad = OptionsChange {
        tls: Some(Some(TlsInput {
            ca_bundle: Some("not pem".into()),
            ..TlsInput::default()
        })),
        ..OptionsChange::default()
    };
    assert!(bad.new_options(&targets()).is_err());
    let half = OptionsChange {
        tls: Some(Some(TlsInput {
            client_key: Some("x".into()),
            ..TlsInput::default()
        })),
        ..OptionsChange::default()
    };
    assert!(
        half.new_options(&targets()).is_err(),
        "a key without a certificate"
    );
    let empty = OptionsChange {
        tls: Some(Some(TlsInput::default())),
        ..OptionsChange::default()
    };
    assert!(empty.new_options(&targets()).is_err());
}

#[test]
fn secrets_are_sealed_to_their_endpoint() {
    let cipher = Cipher::new(&[7u8; 32]);
    let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    assert_eq!(seal(&cipher, a, &Secrets::default()), None);
    let secrets = Secrets { credential: Some("c".into()), ..Secrets::default() };
    let sealed = seal(&cipher, a, &secrets).expect("sealed");
    assert!(!String::from_utf8_lossy(&sealed).contains("\"c\""));
    assert_eq!(open(&cipher, a, Some(&sealed)).expect("opens"), secrets);
    assert!(
        open(&cipher, b, Some(&sealed)).is_err(),
        "bound to its endpoint"
    );
    assert_eq!(open(&cipher, a, None).expect("none"), Secrets::default());
}

#[test]
fn a_key_rotation_reseals_under_the_new_key() {
    let old = Cipher::new(&[1u8; 32]);
    let endpoint = uuid::Uuid::from_u128(9);
    let secrets = Secrets { client_key: Some("k".into()), ..Secrets::default() };
    let sealed = seal(&old, endpoint, &secrets).expect("sealed");
    let keys = crate::crypto::MasterKeys::new(vec![
        ("k2".into(), [2u8; 32]),
        ("default".into(), [1u8; 32]),
    ]);
    let both = Cipher::with_keys(&keys);
    let resealed = reseal(&both, endpoint, &sealed)
        .expect("readable")
        .expect("rewritten");
    assert!(both.is_current(&resealed));
    assert_eq!(
        reseal(&both, endpoint, &resealed).expect("readable"),
        None,
        "already current"
    );
    let only_new = Cipher::with_keys(&crate::crypto::MasterKeys::new(vec![(
        "k2".into(),
        [2u8; 32],
    )]));
    assert_eq!(
        open(&only_new, endpoint, Some(&resealed)).expect("opens"),
        secrets
    );
}
