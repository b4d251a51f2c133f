//! Listing in memory for the small per-user collections of issue 16 item 8 (polls, votes,
//! drafts, reminders, user groups): `filter` with `$eq`/`$ne`/`$in`, a sort direction, and
//! `limit`/`next` paging where `next` is an offset this server gave.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::{Error, Result};

const MAX_PAGE: usize = 100;

/// `filter`, `sort`, `limit`, `next` of a query request.
#[derive(Debug, Default, Deserialize)]
pub struct QueryPage {
    #[serde(default)]
    pub filter: Map<String, Value>,
    #[serde(default)]
    pub sort: Value,
    pub limit: Option<usize>,
    pub next: Option<String>,
}

impl QueryPage {
    pub fn window(&self) -> Result<(usize, usize)> {
        let limit = self.limit.unwrap_or(25).clamp(1, MAX_PAGE);
        let offset = match &self.next {
            None => 0,
            Some(n) if n.is_empty() => 0,
            Some(n) => n
                .parse::<usize>()
                .map_err(|_| Error::input("next is not a cursor this server gave"))?,
        };
        Ok((limit, offset))
    }

    pub fn descending(&self) -> bool {
        // `[{field, direction}]`; ascending only when asked for.
        self.sort
            .as_array()
            .and_then(|s| s.first())
            .and_then(|s| s.get("direction"))
            .and_then(Value::as_i64)
            .is_none_or(|d| d <= 0)
    }
}

/// Whether `value` passes the filter condition `cond` (`{"$eq": x}`, `{"$in": [..]}` or a
/// bare value).
fn matches(cond: &Value, value: &Value) -> Result<bool> {
    match cond {
        Value::Object(ops) => {
            for (op, arg) in ops {
                let ok = match op.as_str() {
                    "$eq" => arg == value,
                    "$ne" => arg != value,
                    "$in" => arg
                        .as_array()
                        .ok_or_else(|| Error::input("$in takes a list"))?
                        .contains(value),
                    other => {
                        return Err(Error::input(format!(
                            "filter operator {other} is not supported here"
                        )));
                    }
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        bare => Ok(bare == value),
    }
}

pub fn filtered(
    items: Vec<Value>,
    filter: &Map<String, Value>,
    fields: &[&str],
) -> Result<Vec<Value>> {
    for k in filter.keys() {
        if !fields.contains(&k.as_str()) {
            return Err(Error::input(format!("cannot filter on {k}")));
        }
    }
    let mut out = Vec::new();
    for item in items {
        let mut keep = true;
        for (k, cond) in filter {
            let field = if k == "poll_id" && item.get("options").is_some() {
                "id"
            } else {
                k.as_str()
            };
            let v = item.get(field).cloned().unwrap_or(Value::Null);
            let v = if k == "is_answer" && v.is_null() {
                false.into()
            } else {
                v
            };
            if !matches(cond, &v)? {
                keep = false;
                break;
            }
        }
        if keep {
            out.push(item);
        }
    }
    Ok(out)
}

pub fn page(items: Vec<Value>, q: &QueryPage, key: &str) -> Result<Value> {
    let (limit, offset) = q.window()?;
    let total = items.len();
    let list: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let mut out = json!({ key: list });
    if offset + limit < total {
        out["next"] = (offset + limit).to_string().into();
    }
    Ok(out)
}
