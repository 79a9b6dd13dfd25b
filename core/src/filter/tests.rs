//! The filter language's cases: literals and operators on paths, event types and
//! combinations, refusals with where and why, channels.

use serde_json::json;

use super::*;

fn check(filter: Value, event_type: &str, payload: Value) -> bool {
    Filter::parse(&filter)
        .expect("a valid filter")
        .matches(event_type, &payload)
}

#[test]
fn literals_and_operators_on_paths() {
    let order = json!({"data": {"amount": 120, "currency": "EUR", "items": [{"sku": "a-1"}]}});
    assert!(check(
        json!({"data.currency": "EUR"}),
        "order.paid",
        order.clone()
    ));
    assert!(!check(
        json!({"data.currency": "USD"}),
        "order.paid",
        order.clone()
    ));
    assert!(check(
        json!({"data.amount": {"$gte": 120, "$lt": 121}}),
        "x",
        order.clone()
    ));
    assert!(!check(
        json!({"data.amount": {"$gt": 120}}),
        "x",
        order.clone()
    ));
    assert!(check(json!({"data.amount": 120.0}), "x", order.clone()));
    assert!(check(
        json!({"data.items.0.sku": {"$prefix": "a-"}}),
        "x",
        order.clone()
    ));
    assert!(check(
        json!({"data.currency": {"$in": ["EUR", "GBP"]}}),
        "x",
        order.clone()
    ));
    assert!(check(
        json!({"data.currency": {"$nin": ["USD"]}}),
        "x",
        order.clone()
    ));
    assert!(check(
        json!({"data.refund": {"$exists": false}}),
        "x",
        order.clone()
    ));
    assert!(!check(
        json!({"data.refund": {"$exists": true}}),
        "x",
        order.clone()
    ));
    assert!(check(
        json!({"data.refund": {"$ne": 1}}),
        "x",
        order.clone()
    ));
    // Comparing a string with a number holds neither way.
    assert!(!check(
        json!({"data.currency": {"$gt": 1}}),
        "x",
        order.clone()
    ));
    assert!(!check(json!({"data.currency": {"$lte": 1}}), "x", order));
}

#[test]
fn event_types_and_combinations() {
    let f = json!({
        "$event_type": {"$prefix": "order."},
        "$or": [{"data.currency": "EUR"}, {"$not": {"data.amount": {"$lt": 1000}}}]
    });
    assert!(check(
        f.clone(),
        "order.paid",
        json!({"data": {"currency": "EUR", "amount": 5}})
    ));
    assert!(check(
        f.clone(),
        "order.paid",
        json!({"data": {"currency": "USD", "amount": 5000}})
    ));
    assert!(!check(
        f.clone(),
        "order.paid",
        json!({"data": {"currency": "USD", "amount": 5}})
    ));
    assert!(!check(
        f,
        "user.created",
        json!({"data": {"currency": "EUR"}})
    ));
    assert!(check(
        json!({"$and": [{"$event_type": "a.b"}, {"k": true}]}),
        "a.b",
        json!({"k": true})
    ));
}

#[test]
fn bad_filters_are_refused_with_where_and_why() {
    let refused = |f: Value| Filter::parse(&f).expect_err("refused").to_string();
    assert!(refused(json!([1])).contains("must be an object"));
    assert!(refused(json!({})).contains("is empty"));
    assert_eq!(
        refused(json!({"$or": [{"a": {"$gtx": 1}}]})),
        "filter at $or[0].a.$gtx: unknown operator \"$gtx\"; expected one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $prefix"
    );
    assert!(refused(json!({"$where": "1"})).contains("unknown operator \"$where\""));
    assert!(refused(json!({"a..b": 1})).contains("none of them empty"));
    assert!(refused(json!({"a": {"$gt": [1]}})).contains("number or a string"));
    assert!(refused(json!({"a": {"$in": 3}})).contains("list of values"));
    assert!(refused(json!({"a": {"$exists": "yes"}})).contains("true or false"));
    assert!(refused(json!({"$and": []})).contains("at least one"));
    let mut deep = json!({"a": 1});
    for _ in 0..=MAX_DEPTH {
        deep = json!({ "$not": deep });
    }
    assert!(refused(deep).contains("nests deeper"));
    let many: Map<String, Value> = (0..=MAX_CONDITIONS)
        .map(|i| (format!("k{i}"), json!(i)))
        .collect();
    assert!(refused(Value::Object(many)).contains("at most 64 conditions"));
    let big = json!({"a": {"$in": vec!["x".repeat(100); 50]}});
    assert!(refused(big).contains("bytes; at most 4096"));
}

#[test]
fn channels_narrow_only_endpoints_that_name_some() {
    let billing = vec!["billing".to_string()];
    let both = vec!["eu".to_string(), "billing".to_string()];
    assert!(channels_match(None, None));
    assert!(channels_match(None, Some(&billing)));
    assert!(!channels_match(Some(&billing), None));
    assert!(channels_match(Some(&billing), Some(&both)));
    assert!(!channels_match(Some(&billing), Some(&["eu".to_string()])));
}

#[test]
fn integers_beyond_doubles_compare_exactly() {
    let big = json!({ "id": 9_007_199_254_740_993u64 });
    assert!(!check(
        json!({ "id": 9_007_199_254_740_992u64 }),
        "t",
        big.clone()
    ));
    assert!(check(
        json!({ "id": 9_007_199_254_740_993u64 }),
        "t",
        big.clone()
    ));
    assert!(check(
        json!({ "id": { "$gt": 9_007_199_254_740_992u64 } }),
        "t",
        big.clone()
    ));
    assert!(check(
        json!({ "id": { "$lt": -1 } }),
        "t",
        json!({ "id": -2 })
    ));
    assert!(check(json!({ "id": 1 }), "t", json!({ "id": 1.0 })));
}
