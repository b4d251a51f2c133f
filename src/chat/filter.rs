//! Stream's MongoDB-style filters and sorts, evaluated against a JSON view of a channel,
//! user or message. Parsing validates everything up front (code 4 on bad input), so
//! evaluation cannot fail.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::chat::{Error, Result};
use crate::time::parse_rfc3339;

const MAX_DEPTH: usize = 8;
const MAX_NODES: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Nor(Vec<Filter>),
    Field { name: String, op: Op, value: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    Nin,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    Autocomplete,
    Contains,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "$eq" => Op::Eq,
            "$ne" => Op::Ne,
            "$in" => Op::In,
            "$nin" => Op::Nin,
            "$gt" => Op::Gt,
            "$gte" => Op::Gte,
            "$lt" => Op::Lt,
            "$lte" => Op::Lte,
            "$exists" => Op::Exists,
            "$autocomplete" | "$q" => Op::Autocomplete,
            "$contains" => Op::Contains,
            _ => return None,
        })
    }
}

/// Parses a filter object. `null` or `{}` matches everything.
pub fn parse(value: &Value) -> Result<Filter> {
    let mut nodes = 0;
    parse_node(value, 0, &mut nodes)
}

fn parse_node(value: &Value, depth: usize, nodes: &mut usize) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(Error::input("filter is nested too deeply"));
    }
    let obj = match value {
        Value::Null => return Ok(Filter::And(Vec::new())),
        Value::Object(obj) => obj,
        _ => return Err(Error::input("filter_conditions must be an object")),
    };
    let mut parts = Vec::new();
    for (key, v) in obj {
        *nodes += 1;
        if *nodes > MAX_NODES {
            return Err(Error::input("filter is too large"));
        }
        match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let list = v.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
                    Error::input(format!("{key} needs a non-empty array of filters"))
                })?;
                let subs = list
                    .iter()
                    .map(|f| parse_node(f, depth + 1, nodes))
                    .collect::<Result<Vec<_>>>()?;
                parts.push(match key.as_str() {
                    "$and" => Filter::And(subs),
                    "$or" => Filter::Or(subs),
                    _ => Filter::Nor(subs),
                });
            }
            name if name.starts_with('$') => {
                return Err(Error::input(format!(
                    "invalid operator {name} at the top of a filter"
                )));
            }
            name => {
                if name.len() > 100 {
                    return Err(Error::input("filter field name is too long"));
                }
                parts.extend(parse_field(name, v)?);
            }
        }
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::And(parts)
    })
}

fn parse_field(name: &str, v: &Value) -> Result<Vec<Filter>> {
    let field = |op, value: &Value| Filter::Field {
        name: name.to_string(),
        op,
        value: value.clone(),
    };
    match v {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => ops
            .iter()
            .map(|(op_name, value)| {
                let op = Op::parse(op_name).ok_or_else(|| {
                    Error::input(format!("invalid operator {op_name} on field {name}"))
                })?;
                match op {
                    Op::In | Op::Nin if !value.is_array() => Err(Error::input(format!(
                        "{op_name} on field {name} needs an array"
                    ))),
                    Op::Exists if !value.is_boolean() => Err(Error::input(format!(
                        "$exists on field {name} needs true or false"
                    ))),
                    Op::Autocomplete if !value.is_string() => Err(Error::input(format!(
                        "{op_name} on field {name} needs a string"
                    ))),
                    _ => Ok(field(op, value)),
                }
            })
            .collect(),
        other => Ok(vec![field(Op::Eq, other)]),
    }
}

impl Filter {
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(doc)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(doc)),
            Filter::Nor(fs) => !fs.iter().any(|f| f.matches(doc)),
            Filter::Field { name, op, value } => {
                let actual = lookup(doc, name);
                eval(*op, actual.as_deref(), value)
            }
        }
    }

    /// Whether the filter names the field `name` anywhere.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Filter::And(fs) | Filter::Or(fs) | Filter::Nor(fs) => {
                fs.iter().any(|f| f.mentions(name))
            }
            Filter::Field { name: n, .. } => n == name,
        }
    }

    /// Values the filter requires `name` to take (from `$eq`/`$in` at the top level), for
    /// narrowing a query before evaluation. `None` when the filter does not pin `name`.
    pub fn required_values(&self, name: &str) -> Option<Vec<String>> {
        match self {
            Filter::Field {
                name: n,
                op: Op::Eq,
                value: Value::String(s),
            } if n == name => Some(vec![s.clone()]),
            Filter::Field {
                name: n,
                op: Op::In,
                value: Value::Array(list),
            } if n == name => Some(
                list.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            ),
            Filter::And(fs) => fs.iter().find_map(|f| f.required_values(name)),
            _ => None,
        }
    }
}

/// The value at a dotted path. A step through a list collects the key from each element
/// (`attachments.type` of a message is the list of its attachments' types), so equality
/// and `$in` match when any element does, as Stream's filters do.
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<Cow<'a, Value>> {
    if let Some(v) = doc.get(path) {
        return Some(Cow::Borrowed(v));
    }
    let mut cur = Cow::Borrowed(doc);
    for key in path.split('.') {
        cur = match cur {
            Cow::Borrowed(v) => step(v, key)?,
            Cow::Owned(v) => Cow::Owned(step(&v, key)?.into_owned()),
        };
    }
    Some(cur)
}

fn step<'a>(v: &'a Value, key: &str) -> Option<Cow<'a, Value>> {
    match v {
        Value::Array(items) => match key.parse::<usize>() {
            Ok(i) => items.get(i).map(Cow::Borrowed),
            Err(_) => {
                let found: Vec<Value> = items
                    .iter()
                    .filter_map(|item| item.get(key))
                    .flat_map(|x| match x {
                        Value::Array(inner) => inner.clone(),
                        other => vec![other.clone()],
                    })
                    .collect();
                (!found.is_empty()).then(|| Cow::Owned(Value::Array(found)))
            }
        },
        _ => v.get(key).map(Cow::Borrowed),
    }
}

fn eval(op: Op, actual: Option<&Value>, expected: &Value) -> bool {
    let present = actual.filter(|v| !v.is_null());
    match op {
        Op::Exists => present.is_some() == expected.as_bool().unwrap_or(true),
        Op::Eq => actual.is_some_and(|a| eq(a, expected)),
        Op::Ne => !actual.is_some_and(|a| eq(a, expected)),
        Op::In => expected
            .as_array()
            .is_some_and(|list| actual.is_some_and(|a| in_list(a, list))),
        Op::Nin => !expected
            .as_array()
            .is_some_and(|list| actual.is_some_and(|a| in_list(a, list))),
        Op::Contains => match present {
            Some(Value::Array(items)) => items.iter().any(|i| scalar_eq(i, expected)),
            Some(Value::String(s)) => expected.as_str().is_some_and(|e| s.contains(e)),
            _ => false,
        },
        Op::Autocomplete => match (present, expected.as_str()) {
            (Some(Value::String(s)), Some(e)) => s.to_lowercase().contains(&e.to_lowercase()),
            _ => false,
        },
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let Some(ord) = present.and_then(|a| compare(a, expected)) else {
                return false;
            };
            match op {
                Op::Gt => ord == Ordering::Greater,
                Op::Gte => ord != Ordering::Less,
                Op::Lt => ord == Ordering::Less,
                _ => ord != Ordering::Greater,
            }
        }
    }
}

/// Equality with Stream's array semantics: an array field equals a scalar it contains, and
/// an array it holds the same elements as (in any order).
fn eq(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Array(items), Value::Array(want)) => {
            items.len() == want.len() && want.iter().all(|w| items.iter().any(|i| scalar_eq(i, w)))
        }
        (Value::Array(items), scalar) => items.iter().any(|i| scalar_eq(i, scalar)),
        (a, b) => scalar_eq(a, b),
    }
}

fn in_list(actual: &Value, list: &[Value]) -> bool {
    match actual {
        Value::Array(items) => items.iter().any(|i| list.iter().any(|l| scalar_eq(i, l))),
        a => list.iter().any(|l| scalar_eq(a, l)),
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Orders two values: numbers numerically, RFC 3339 times chronologically, strings
/// lexically, booleans false < true. Mixed kinds do not compare.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => match (parse_rfc3339(x), parse_rfc3339(y)) {
            (Some(tx), Some(ty)) => Some(tx.cmp(&ty)),
            _ => Some(x.cmp(y)),
        },
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One sort key: a field and a direction (1 ascending, -1 descending).
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

/// Parses `[{"field": "f", "direction": -1}]` (or the older `{"f": -1}` map).
pub fn parse_sort(value: &Value) -> Result<Vec<SortKey>> {
    let bad = || Error::input("sort must be a list of {field, direction}");
    let direction = |v: &Value| match (v, v.as_i64()) {
        (Value::Null, _) | (_, Some(1)) => Ok(false),
        (_, Some(-1)) => Ok(true),
        _ => Err(Error::input("sort direction must be 1 or -1")),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let field = item
                    .get("field")
                    .and_then(Value::as_str)
                    .filter(|f| !f.is_empty())
                    .ok_or_else(bad)?;
                Ok(SortKey {
                    field: field.to_string(),
                    descending: direction(item.get("direction").unwrap_or(&Value::Null))?,
                })
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(field, dir)| {
                Ok(SortKey {
                    field: field.clone(),
                    descending: direction(dir)?,
                })
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// Compares two documents by the sort keys. Missing values sort as the smallest, so they
/// come last in a descending sort (channels without messages after the active ones).
pub fn compare_docs(a: &Value, b: &Value, keys: &[SortKey]) -> Ordering {
    for key in keys {
        let va = lookup(a, &key.field).filter(|v| !v.is_null());
        let vb = lookup(b, &key.field).filter(|v| !v.is_null());
        let ord = match (va, vb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => compare(&x, &y).unwrap_or(Ordering::Equal),
        };
        let ord = if key.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_path_through_a_list_matches_any_element() {
        let doc = json!({"attachments": [{"type": "file"}, {"type": "image"}]});
        let f = parse(&json!({"attachments.type": "image"})).unwrap();
        assert!(f.matches(&doc));
        let f = parse(&json!({"attachments.type": {"$in": ["video"]}})).unwrap();
        assert!(!f.matches(&doc));
        let f = parse(&json!({"attachments.0.type": "file"})).unwrap();
        assert!(f.matches(&doc));
    }

    fn m(filter: Value, doc: Value) -> bool {
        parse(&filter).unwrap().matches(&doc)
    }

    #[test]
    fn eq_in_and_or_on_scalars_and_members() {
        let doc = json!({"type": "messaging", "members": ["a", "b"], "color": "red", "n": 3});
        assert!(m(json!({"type": "messaging"}), doc.clone()));
        assert!(m(json!({"members": {"$in": ["b", "z"]}}), doc.clone()));
        assert!(!m(json!({"members": {"$in": ["z"]}}), doc.clone()));
        assert!(m(json!({"members": {"$eq": ["b", "a"]}}), doc.clone()));
        assert!(!m(json!({"members": {"$eq": ["a"]}}), doc.clone()));
        assert!(m(
            json!({"$or": [{"color": "blue"}, {"n": {"$gte": 3}}]}),
            doc.clone()
        ));
        assert!(!m(
            json!({"$and": [{"color": "red"}, {"n": {"$gt": 3}}]}),
            doc.clone()
        ));
        assert!(m(json!({"missing": {"$exists": false}}), doc.clone()));
        assert!(m(json!({}), doc));
    }

    #[test]
    fn bad_filters_are_input_errors() {
        for bad in [
            json!({"a": {"$regex": "x"}}),
            json!({"a": {"$in": "x"}}),
            json!({"$or": []}),
            json!([1]),
            json!({"$where": 1}),
        ] {
            assert!(matches!(parse(&bad), Err(Error::Input(_))), "{bad}");
        }
    }

    #[test]
    fn sorts_put_missing_values_last_when_descending() {
        let keys = parse_sort(&json!([{"field": "last_message_at", "direction": -1}])).unwrap();
        let mut docs = [
            json!({"id": 1}),
            json!({"id": 2, "last_message_at": "2024-01-02T00:00:00Z"}),
            json!({"id": 3, "last_message_at": "2024-01-03T00:00:00Z"}),
        ];
        docs.sort_by(|a, b| compare_docs(a, b, &keys));
        let ids: Vec<_> = docs.iter().map(|d| d["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [3, 2, 1]);
    }
}
