//! Guest users (`POST /guest`, the SDK's `setGuestUser`): a user the app did not create,
//! with the `guest` role and its limits (`policies/users.cedar`, `policies/phi.cedar`: no
//! typing or read signals, never a `phi` channel). Only when the deployment allows guests
//! (`WARD_GUEST_USERS=true`; the edge checks it).
//!
//! The id is always Ward's own (`guest-<uuid>`), never the one the caller asks for: an id
//! chosen by an unauthenticated caller could be an existing user's, or a future one's.

use serde_json::{Map, Value};

use super::user::{custom_fields, new_user, save_user};
use super::{Actor, Ctx, Error, Result};
use crate::audit::EventType;
use crate::store::UserRow;
use crate::time::now_micros;

/// Creates a guest user from the profile the caller sent (`name`, `image` and custom fields;
/// `id`, `role` and the other reserved fields are ignored).
pub async fn create_guest(ctx: &Ctx<'_>, actor: &Actor, user: Option<&Value>) -> Result<UserRow> {
    actor.authorize_app(ctx, "CreateGuest")?;
    let profile = match user {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(Error::input("user must be an object")),
    };
    let id = format!("guest-{}", uuid::Uuid::now_v7().simple());
    let mut row = new_user(&id, now_micros());
    row.role = "guest".into();
    row.data = custom_fields(&profile)?;
    let record = actor
        .audit(EventType::UserUpsert)
        .subject(id.clone())
        .object("user", id.clone())
        .meta("created", true);
    save_user(ctx, &row, [record]).await
}

/// The prefix of an anonymous connection's user id on the bus. `!` never appears in a user
/// id (`validate_user_id`), so an anonymous connection can never be taken for a user's,
/// nor match a user's revocation. No user row is ever stored for it.
pub const ANONYMOUS_PREFIX: &str = "!anon-";

/// Whether `id` is an anonymous connection's user id.
pub fn is_anonymous_id(id: &str) -> bool {
    id.starts_with(ANONYMOUS_PREFIX)
}

/// The in-memory user an anonymous connection acts as (role `anonymous`, never stored).
pub fn anonymous_user(client_id: &str) -> Result<UserRow> {
    super::validate_user_id(client_id)?;
    let mut row = new_user(&format!("{ANONYMOUS_PREFIX}{client_id}"), now_micros());
    row.role = "anonymous".into();
    Ok(row)
}

/// Watching for an anonymous caller: the connection must be an anonymous one, and the
/// channel one anonymous users may read (public types; never `phi`, by the policies), by
/// the same read decision deliveries pass. Anonymous watchers are not announced.
pub async fn watch_anonymous(ctx: &Ctx<'_>, conn_id: Option<&str>, cid: &str) -> Result<()> {
    let Some(conn) = conn_id else {
        return Ok(());
    };
    let Some(anon) = ctx.bus.connection_user(conn).filter(|u| is_anonymous_id(u)) else {
        return Err(Error::input(format!(
            "connection_id {conn} is not an open anonymous connection"
        )));
    };
    if !ctx.bus.may_read(cid, &anon).await {
        return Err(Error::not_allowed(format!(
            "ReadChannel is not allowed for anonymous users in channel {cid}"
        )));
    }
    ctx.bus.watch(conn, cid);
    Ok(())
}
