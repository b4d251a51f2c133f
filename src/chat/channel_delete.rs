//! `POST /channels/delete` (client.deleteChannels): deletes several channels, each one
//! decided and recorded on its own exactly as `DELETE /channels/{type}/{id}` does it.
//!
//! Stream answers with a task; Ward deletes synchronously (at most [`MAX_CIDS`] channels) and
//! answers with the outcome per channel in `result`, which the SDK's
//! `DeleteChannelsResponse` carries (`task_id` is optional there).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::channel_update::delete_channel;
use crate::chat::{Actor, Ctx, Error, Result, parse_cid};

/// Most channels one request deletes (Stream's limit for the endpoint).
pub const MAX_CIDS: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct DeleteChannels {
    #[serde(default)]
    pub cids: Vec<String>,
    #[serde(default)]
    pub hard_delete: bool,
}

/// Deletes each channel the actor may delete; `result[cid]` is `"ok"` or why it was not.
/// A request naming no channel, too many, or a malformed cid is refused as a whole.
pub async fn delete_channels(ctx: &Ctx<'_>, actor: &Actor, body: &DeleteChannels) -> Result<Value> {
    if body.cids.is_empty() {
        return Err(Error::input("cids must name at least one channel"));
    }
    if body.cids.len() > MAX_CIDS {
        return Err(Error::input(format!(
            "at most {MAX_CIDS} channels can be deleted at once"
        )));
    }
    for cid in &body.cids {
        parse_cid(cid)?;
    }
    let mut result = Map::new();
    for cid in &body.cids {
        if result.contains_key(cid) {
            continue;
        }
        let outcome = match delete_channel(ctx, actor, cid, body.hard_delete).await {
            Ok(_) => "ok".to_string(),
            Err(Error::NotFound(m) | Error::NotAllowed(m) | Error::Input(m)) => m,
            Err(Error::Denied(d)) => d.to_string(),
            Err(other) => return Err(other),
        };
        result.insert(cid.clone(), outcome.into());
    }
    Ok(json!({ "result": result }))
}
