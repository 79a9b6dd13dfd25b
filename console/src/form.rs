//! Form and query-string plumbing shared by the pages: empty fields as absent,
//! times as typed in a `datetime-local` field, query strings, the "check the form" page.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::view::{self, Nav};

/// Treats empty form fields as absent.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// RFC 3339, or the `datetime-local` form (taken as UTC).
pub fn parse_time(v: &Option<String>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(s) = given(v) else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&s, f).ok())
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| format!("\"{s}\" is not a date and time"))
}

/// `k=v&…`, form-encoded.
pub fn encode(params: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A 400 page for input that cannot be used, saying why.
pub fn bad_request(text: &str, nav: Nav) -> Response {
    view::message(StatusCode::BAD_REQUEST, "Check the filters", text, nav)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_and_times_parsed_from_both_forms() {
        assert_eq!(
            encode(&[("q", "a b&c=d".into()), ("done", "100%".into())]),
            "q=a+b%26c%3Dd&done=100%25"
        );
        let t = parse_time(&Some("2026-12-01T10:30".into())).expect("form time");
        assert_eq!(
            t.map(|t| t.to_rfc3339()),
            Some("2026-12-01T10:30:00+00:00".into())
        );
        assert!(parse_time(&Some("  ".into())).expect("empty").is_none());
        assert!(parse_time(&Some("yesterday".into())).is_err());
    }
}
