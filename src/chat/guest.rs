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
