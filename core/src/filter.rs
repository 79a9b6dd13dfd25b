//! Payload filters: which events an endpoint receives beyond its event types and
//! channels, decided at routing. A filter is a JSON document in the style of
//! MongoDB queries: keys are dotted paths into the payload (or `$event_type`),
//! values are a literal to equal or an object of operators; `$and`, `$or` and
//! `$not` combine them. Parsing checks it once (bounded in size and depth); the
//! parsed form evaluates an event without allocating (but for `$event_type`).
//!
//! ```json
//! {"$event_type": {"$prefix": "order."},
//!  "data.amount": {"$gte": 100},
//!  "$or": [{"data.currency": "EUR"}, {"data.country": {"$in": ["DE", "FR"]}}]}
//! ```

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// Largest filter document, in bytes of compact JSON.
pub const MAX_BYTES: usize = 4096;
/// Deepest nesting of `$and`, `$or` and `$not`.
pub const MAX_DEPTH: usize = 8;
/// Most conditions (path and operator pairs) in one filter.
pub const MAX_CONDITIONS: usize = 64;
/// Most segments in one path.
pub const MAX_PATH_SEGMENTS: usize = 16;
/// Most values in one `$in` or `$nin` list.
pub const MAX_LIST: usize = 256;

/// Why a filter was refused: where in the document, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter{at}: {problem}")]
pub struct FilterError {
    at: String,
    problem: String,
}

impl FilterError {
    fn new(at: &str, problem: impl Into<String>) -> Self {
        Self {
            at: if at.is_empty() {
                String::new()
            } else {
                format!(" at {at}")
            },
            problem: problem.into(),
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every one holds (an object's keys, `$and`).
    All(Vec<Filter>),
    /// At least one holds (`$or`).
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Test {
        target: Target,
        op: Op,
    },
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    EventType,
    /// Keys (or array indexes) from the payload's root.
    Path(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Prefix(String),
}

impl Filter {
    /// Parses and checks a filter document.
    pub fn parse(doc: &Value) -> Result<Self, FilterError> {
        let bytes = serde_json::to_vec(doc).map_or(usize::MAX, |b| b.len());
        if bytes > MAX_BYTES {
            return Err(FilterError::new(
                "",
                format!("is {bytes} bytes; at most {MAX_BYTES} are allowed"),
            ));
        }
        let mut budget = MAX_CONDITIONS;
        parse_doc(doc, "", 0, &mut budget)
    }

    /// Whether an event of this type with this payload passes.
    pub fn matches(&self, event_type: &str, payload: &Value) -> bool {
        match self {
            Self::All(all) => all.iter().all(|f| f.matches(event_type, payload)),
            Self::Any(any) => any.iter().any(|f| f.matches(event_type, payload)),
            Self::Not(f) => !f.matches(event_type, payload),
            Self::Test { target, op } => match target {
                Target::EventType => op.holds(Some(&Value::String(event_type.to_string()))),
                Target::Path(path) => op.holds(lookup(payload, path)),
            },
        }
    }
}

fn parse_doc(
    doc: &Value,
    at: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Filter, FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError::new(
            at,
            format!("nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    let Value::Object(fields) = doc else {
        return Err(FilterError::new(at, "must be an object"));
    };
    if fields.is_empty() {
        return Err(FilterError::new(
            at,
            "is empty; give at least one condition",
        ));
    }
    let mut all = Vec::with_capacity(fields.len());
    for (key, value) in fields {
        let here = join(at, key);
        all.push(match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = value else {
                    return Err(FilterError::new(&here, "must be a list of filters"));
                };
                if items.is_empty() {
                    return Err(FilterError::new(&here, "must hold at least one filter"));
                }
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| parse_doc(f, &format!("{here}[{i}]"), depth + 1, budget))
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "$and" { Filter::All(parts) } else { Filter::Any(parts) }
            }
            "$not" => Filter::Not(Box::new(parse_doc(value, &here, depth + 1, budget)?)),
            "$event_type" => parse_test(Target::EventType, value, &here, budget)?,
            k if k.starts_with('$') => {
                return Err(FilterError::new(
                    &here,
                    format!(
                        "unknown operator {k:?}; at this level use a path, $event_type, $and, $or or $not"
                    ),
                ));
            }
            path => parse_test(Target::Path(parse_path(path, &here)?), value, &here, budget)?,
        });
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Filter::All(all)
    })
}

fn parse_path(path: &str, at: &str) -> Result<Vec<String>, FilterError> {
    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
    if segments.iter().any(String::is_empty) {
        return Err(FilterError::new(
            at,
            "a path is keys joined by '.', none of them empty",
        ));
    }
    if segments.len() > MAX_PATH_SEGMENTS {
        return Err(FilterError::new(
            at,
            format!("a path has at most {MAX_PATH_SEGMENTS} segments"),
        ));
    }
    Ok(segments)
}

/// A literal (equality) or an object of operators, all of which must hold.
fn parse_test(
    target: Target,
    value: &Value,
    at: &str,
    budget: &mut usize,
) -> Result<Filter, FilterError> {
    let ops: Vec<(String, &Value)> = match value {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
            ops.iter().map(|(k, v)| (k.clone(), v)).collect()
        }
        literal => vec![("$eq".to_string(), literal)],
    };
    let mut tests = Vec::with_capacity(ops.len());
    for (name, operand) in ops {
        *budget = budget.checked_sub(1).ok_or_else(|| {
            FilterError::new(
                at,
                format!("a filter holds at most {MAX_CONDITIONS} conditions"),
            )
        })?;
        let here = join(at, &name);
        tests.push(Filter::Test {
            target: target.clone(),
            op: parse_op(&name, operand, &here)?,
        });
    }
    Ok(if tests.len() == 1 {
        tests.remove(0)
    } else {
        Filter::All(tests)
    })
}

fn parse_op(name: &str, operand: &Value, at: &str) -> Result<Op, FilterError> {
    let comparable = |v: &Value| match v {
        Value::Number(_) | Value::String(_) => Ok(v.clone()),
        _ => Err(FilterError::new(at, "compares with a number or a string")),
    };
    let list = |v: &Value| match v {
        Value::Array(items) if items.len() <= MAX_LIST => Ok(items.clone()),
        Value::Array(_) => Err(FilterError::new(
            at,
            format!("holds at most {MAX_LIST} values"),
        )),
        _ => Err(FilterError::new(at, "must be a list of values")),
    };
    Ok(match name {
        "$eq" => Op::Eq(operand.clone()),
        "$ne" => Op::Ne(operand.clone()),
        "$gt" => Op::Gt(comparable(operand)?),
        "$gte" => Op::Gte(comparable(operand)?),
        "$lt" => Op::Lt(comparable(operand)?),
        "$lte" => Op::Lte(comparable(operand)?),
        "$in" => Op::In(list(operand)?),
        "$nin" => Op::Nin(list(operand)?),
        "$exists" => match operand {
            Value::Bool(b) => Op::Exists(*b),
            _ => return Err(FilterError::new(at, "must be true or false")),
        },
        "$prefix" => match operand {
            Value::String(s) => Op::Prefix(s.clone()),
            _ => return Err(FilterError::new(at, "must be a string")),
        },
        other => {
            return Err(FilterError::new(
                at,
                format!(
                    "unknown operator {other:?}; expected one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $prefix"
                ),
            ));
        }
    })
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The value at `path`: object keys, or indexes into arrays.
fn lookup<'v>(mut value: &'v Value, path: &[String]) -> Option<&'v Value> {
    for segment in path {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

impl Op {
    fn holds(&self, found: Option<&Value>) -> bool {
        match (self, found) {
            (Self::Exists(want), found) => found.is_some() == *want,
            (Self::Ne(v), found) => found.is_none_or(|f| !same(f, v)),
            (Self::Nin(vs), found) => found.is_none_or(|f| !vs.iter().any(|v| same(f, v))),
            (_, None) => false,
            (Self::Eq(v), Some(f)) => same(f, v),
            (Self::In(vs), Some(f)) => vs.iter().any(|v| same(f, v)),
            (Self::Gt(v), Some(f)) => order(f, v) == Some(Ordering::Greater),
            (Self::Gte(v), Some(f)) => {
                matches!(order(f, v), Some(Ordering::Greater | Ordering::Equal))
            }
            (Self::Lt(v), Some(f)) => order(f, v) == Some(Ordering::Less),
            (Self::Lte(v), Some(f)) => {
                matches!(order(f, v), Some(Ordering::Less | Ordering::Equal))
            }
            (Self::Prefix(p), Some(Value::String(s))) => s.starts_with(p.as_str()),
            (Self::Prefix(_), Some(_)) => false,
        }
    }
}

/// JSON equality, numbers by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
}

/// Numbers with numbers, strings with strings; anything else does not compare.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Integers exactly (beyond 2^53 a double cannot tell them apart), the rest as
/// doubles.
fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    let int = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(x), int(y)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// Whether an endpoint subscribed to `wanted` channels (`None`: any) takes an
/// event published on `given`: with channels of its own, the event must carry one.
pub fn channels_match(wanted: Option<&[String]>, given: Option<&[String]>) -> bool {
    match wanted {
        None => true,
        Some(wanted) => given.is_some_and(|given| given.iter().any(|c| wanted.contains(c))),
    }
}

/// Whether an endpoint would receive an event, and which of its conditions
/// decide it: what the console's "would it receive this?" shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Verdict {
    /// All three hold (and the endpoint is routable: not deleted).
    pub receives: bool,
    /// The endpoint subscribes to the event's type.
    pub event_type: bool,
    /// The endpoint names no channels, or the event is on one of them.
    pub channels: bool,
    /// The endpoint has no filter, or the filter matches.
    pub filter: bool,
}

/// Judges `event` against `endpoint`, with `filter` instead of the endpoint's own
/// when given (to try one before saving it).
pub fn judge(
    endpoint: &crate::model::Endpoint,
    event: &crate::model::Event,
    filter: Option<&Value>,
) -> Result<Verdict, FilterError> {
    let filter = match filter.or(endpoint.filter.as_ref().map(|f| &f.0)) {
        Some(doc) => Some(Filter::parse(doc)?),
        None => None,
    };
    let event_type =
        crate::event_type::subscribed(endpoint.event_types.as_deref(), &event.event_type);
    let channels = channels_match(endpoint.channels.as_deref(), event.channels.as_deref());
    let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let filter = filter.is_none_or(|f| f.matches(&event.event_type, &payload));
    Ok(Verdict {
        receives: event_type && channels && filter,
        event_type,
        channels,
        filter,
    })
}

#[cfg(test)]
mod tests;
