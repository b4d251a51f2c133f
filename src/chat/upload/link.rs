//! Download links: `<public url>/uploads/blob/<id>?user=<uid>&exp=<unix secs>&sig=<hex>`,
//! where `sig` is HMAC-SHA-256, under a server key kept in the keyring (subject
//! `system:upload-links`, the same on every node), over the upload id, the user the link was
//! issued to and the expiry. A link is refused once expired or altered; the user it names
//! must still be able to read where the file lives (checked on every download).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::UploadCtx;
use crate::chat::{Error, Result};

const KEY_SUBJECT: &str = "system:upload-links";
const DOMAIN: &[u8] = b"ward-upload-link/v1";
/// The path downloads are served under.
pub const PATH: &str = "/uploads/blob/";

/// The query of a download link.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub exp: String,
    #[serde(default)]
    pub sig: String,
}

fn mac(key: &[u8; 32], id: &str, user: &str, exp: i64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(DOMAIN);
    for part in [id.as_bytes(), user.as_bytes(), exp.to_string().as_bytes()] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    mac
}

fn key_err(e: anyhow::Error) -> Error {
    Error::Store(crate::store::StoreError::Crypto(format!("{e:#}")))
}

async fn key(ctx: &UploadCtx<'_>) -> Result<std::sync::Arc<crate::crypto::frame::Dek>> {
    let blobs = ctx
        .blobs
        .ok_or_else(|| Error::not_allowed("uploads are switched off on this server"))?;
    blobs
        .crypto
        .keyring
        .dek_for_write(KEY_SUBJECT)
        .await
        .map_err(key_err)
}

/// A link to upload `id` for `user`, valid for the configured time. `name` is appended to
/// the path for the browser's benefit (percent-encoded; the server ignores it).
pub async fn issue(ctx: &UploadCtx<'_>, id: &str, user: &str, name: &str) -> Result<String> {
    let exp = chrono::Utc::now().timestamp() + ctx.config.url_ttl_secs;
    issue_until(ctx, id, user, name, exp).await
}

/// As [`issue`], expiring at `exp` (unix seconds).
pub async fn issue_until(
    ctx: &UploadCtx<'_>,
    id: &str,
    user: &str,
    name: &str,
    exp: i64,
) -> Result<String> {
    let key = key(ctx).await?;
    let sig = hex::encode(mac(key.secret(), id, user, exp).finalize().into_bytes());
    let q = serde_urlencoded::to_string([("user", user), ("exp", &exp.to_string()), ("sig", &sig)])
        .map_err(|e| Error::input(e.to_string()))?;
    let name: String = url_encode(name);
    Ok(format!(
        "{}{PATH}{id}/{name}?{q}",
        ctx.public_url.trim_end_matches('/')
    ))
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks a link's signature and expiry (not yet whether its user may still read).
pub async fn verify(ctx: &UploadCtx<'_>, id: &str, q: &Query) -> Result<()> {
    let refused = || Error::not_allowed("this link is not valid or has expired");
    let exp: i64 = q.exp.parse().map_err(|_| refused())?;
    let sig = hex::decode(&q.sig).map_err(|_| refused())?;
    let key = key(ctx).await?;
    mac(key.secret(), id, &q.user, exp)
        .verify_slice(&sig)
        .map_err(|_| refused())?;
    if exp < chrono::Utc::now().timestamp() {
        return Err(refused());
    }
    Ok(())
}

/// The upload id in a link of this server (`…/uploads/blob/<uuid>[/name][?…]`), if it is one.
pub fn upload_id(url: &str) -> Option<String> {
    let (_, rest) = url.split_once(PATH)?;
    let id = rest.split(['/', '?', '#']).next()?;
    uuid::Uuid::parse_str(id)
        .ok()
        .filter(|u| u.hyphenated().to_string() == id)
        .map(|_| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_only_from_links_of_the_download_path() {
        let id = "0190a5b4-7c1d-7a2b-9c3d-4e5f60718293";
        assert_eq!(
            upload_id(&format!("http://h{PATH}{id}/x.png?user=a&exp=1&sig=00")).as_deref(),
            Some(id)
        );
        assert_eq!(upload_id(&format!("http://h{PATH}../../etc")), None);
        assert_eq!(upload_id("http://h/other/0190a5b4"), None);
    }
}
