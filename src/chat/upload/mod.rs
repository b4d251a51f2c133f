//! Uploads: `POST/DELETE /channels/{type}/{id}/file|image` and `POST/DELETE
//! /uploads/file|image`, and the download links they hand out.
//!
//! A file is checked against the configured size and type rules (its type sniffed from its
//! bytes, never taken from the client), images lose their EXIF/XMP metadata ([`sniff`]), and
//! the content is sealed under the uploader's DEK before it is stored ([`SealedBlobs`]), so
//! erasing the uploader makes every copy unreadable. It is served back only by Ward
//! ([`download`]), through a link ([`link`]) that is signed with a server key, expires, and
//! is bound to the user it was issued to: it stops working when that user can no longer read
//! the channel, is erased, or the file is deleted. Every upload, download and deletion is
//! audited.

pub mod link;
pub mod sniff;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::audit::EventType;
use crate::chat::{Actor, Ctx, Error, Result, channel};
use crate::config::{UploadConfig, UploadRules};
use crate::crypto::blobs::SealedBlobs;
use crate::crypto::fields::Opened;
use crate::crypto::frame::Field;
use crate::crypto::sealed::user_subject;
use crate::store::{UploadRow, UserRow};
use crate::time::now_micros;

/// What upload operations use besides chat's context.
#[derive(Clone, Copy)]
pub struct UploadCtx<'a> {
    pub chat: Ctx<'a>,
    /// `None` when field encryption is off: uploads are then refused (files are PHI).
    pub blobs: Option<&'a SealedBlobs>,
    pub config: &'a UploadConfig,
    /// The base of the download links.
    pub public_url: &'a str,
}

/// `…/file` or `…/image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Image,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Image => "image",
        }
    }

    fn rules(self, config: &UploadConfig) -> &UploadRules {
        match self {
            Self::File => &config.file,
            Self::Image => &config.image,
        }
    }
}

/// The uploaded part: its (client-given) file name and bytes.
pub struct Part {
    pub name: Option<String>,
    pub bytes: Vec<u8>,
}

/// A file name as stored and served: the last path component, without control characters
/// or characters that quote or separate in headers, at most 255 characters; `file` when
/// nothing is left.
pub fn clean_name(raw: Option<&str>) -> String {
    let last = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | '\u{2028}' | '\u{2029}'))
        .take(255)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_lowercase())
        .filter(|e| !e.is_empty())
}

/// Checks the sniffed type and the name's extension against `rules`.
fn check_rules(kind: Kind, rules: &UploadRules, mime: &str, name: &str) -> Result<()> {
    if kind == Kind::Image && !sniff::IMAGE_TYPES.contains(&mime) {
        return Err(Error::input(
            "this file is not an image Ward accepts (JPEG, PNG, GIF or WebP)",
        ));
    }
    let ext = extension(name);
    let ext_ok = match &ext {
        Some(e) => {
            !rules.blocked_extensions.contains(e)
                && (rules.allowed_extensions.is_empty() || rules.allowed_extensions.contains(e))
        }
        None => rules.allowed_extensions.is_empty(),
    };
    if !ext_ok {
        return Err(Error::input(format!(
            "file extension {} is not allowed",
            ext.map_or_else(|| "(none)".to_string(), |e| format!(".{e}"))
        )));
    }
    let mime_ok = !rules.blocked_mime_types.iter().any(|m| m == mime)
        && (rules.allowed_mime_types.is_empty()
            || rules.allowed_mime_types.iter().any(|m| m == mime));
    if !mime_ok {
        return Err(Error::input(format!("file type {mime} is not allowed")));
    }
    Ok(())
}

fn blobs<'a>(ctx: &UploadCtx<'a>) -> Result<&'a SealedBlobs> {
    ctx.blobs.ok_or_else(|| {
        Error::not_allowed("uploads need field encryption, which is switched off on this server")
    })
}

fn name_field(id: &str) -> Field<'_> {
    Field {
        table: "uploads",
        column: "name",
        row_id: id,
    }
}

fn internal(e: anyhow::Error) -> Error {
    Error::Store(crate::store::StoreError::Crypto(format!("{e:#}")))
}

/// Uploads `part` into channel `cid` (or app-level when `None`) for `actor`; answers
/// Stream's `{file, thumb_url?}`.
pub async fn upload(
    ctx: &UploadCtx<'_>,
    actor: &Actor,
    cid: Option<&str>,
    kind: Kind,
    part: Part,
) -> Result<Value> {
    let user = actor.require_user()?.clone();
    match cid {
        Some(cid) => channel::load(&ctx.chat, actor, cid)
            .await?
            .require("UploadFile")?,
        None => actor.authorize_app(&ctx.chat, "UploadAppFile")?,
    }
    let blobs = blobs(ctx)?;
    if part.bytes.is_empty() {
        return Err(Error::input("the file is empty"));
    }
    if part.bytes.len() > ctx.config.max_bytes {
        return Err(Error::PayloadTooBig(format!(
            "the file is larger than the limit of {} bytes",
            ctx.config.max_bytes
        )));
    }
    let name = clean_name(part.name.as_deref());
    let mime = sniff::sniff(&part.bytes);
    check_rules(kind, kind.rules(ctx.config), mime, &name)?;
    let content =
        sniff::strip_metadata(mime, &part.bytes).map_err(|e| Error::input(e.to_string()))?;
    drop(part.bytes);
    let id = uuid::Uuid::now_v7().to_string();
    let subject = user_subject(&user.id);
    let sealed_name = blobs
        .crypto
        .seal_text(&subject, name_field(&id), &name)
        .await
        .map_err(internal)?;
    blobs.put(&subject, &id, &content).await.map_err(internal)?;
    let row = UploadRow {
        id: id.clone(),
        cid: cid.map(str::to_string),
        user_id: user.id.clone(),
        kind: kind.as_str().to_string(),
        name: sealed_name,
        mime_type: mime.to_string(),
        size: content.len() as i64,
        storage: blobs.store.kind().to_string(),
        created_at: now_micros(),
    };
    let record = actor
        .audit(EventType::UploadCreate)
        .subject(&user.id)
        .object("upload", &id)
        .meta("channel_type", channel_type_of(cid))
        .meta("kind", kind.as_str())
        .meta("mime_type", mime)
        .meta("size", content.len());
    let stored = async {
        ctx.chat.audit.record(record).await?;
        ctx.chat.store.uploads.insert_upload(&row).await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = stored {
        let _ = blobs.delete(&id).await;
        return Err(e);
    }
    let url = link::issue(ctx, &id, &user.id, &name).await?;
    let mut out = json!({ "file": url });
    if kind == Kind::Image {
        out["thumb_url"] = Value::String(url);
    }
    Ok(out)
}

fn channel_type_of(cid: Option<&str>) -> &str {
    cid.and_then(|c| c.split_once(':')).map_or("", |(t, _)| t)
}

/// `DELETE …/file|image?url=`: the uploader, a moderator of the channel or an admin
/// deletes the file (blob and row).
pub async fn delete(
    ctx: &UploadCtx<'_>,
    actor: &Actor,
    cid: Option<&str>,
    kind: Kind,
    url: &str,
) -> Result<Value> {
    let id =
        link::upload_id(url).ok_or_else(|| Error::input("url is not a file of this server"))?;
    let found = ctx.chat.store.uploads.find_upload(&id).await?;
    let is_uploader = |row: &UploadRow| actor.user_id() == Some(row.user_id.as_str());
    match cid {
        Some(cid) => {
            let loaded = channel::load(&ctx.chat, actor, cid).await?;
            let row = found.filter(|r| r.cid.as_deref() == Some(cid) && r.kind == kind.as_str());
            let Some(row) = row else {
                // Who may read the channel learns the file is gone; others are refused.
                loaded.require_read()?;
                return Err(Error::not_found("the file does not exist"));
            };
            loaded.require_on_message("DeleteFile", is_uploader(&row))?;
            remove(ctx, actor, &row, "deleted").await?;
        }
        None => {
            actor.authorize_app(&ctx.chat, "DeleteAppFile")?;
            let row = found
                .filter(|r| r.cid.is_none() && r.kind == kind.as_str())
                .ok_or_else(|| Error::not_found("the file does not exist"))?;
            if !(is_uploader(&row) || actor.is_admin()) {
                return Err(Error::not_allowed("only the uploader may delete this file"));
            }
            remove(ctx, actor, &row, "deleted").await?;
        }
    }
    Ok(json!({}))
}

/// Deletes an upload's row and blob, audited (`reason`: deleted, message_deleted, erased,
/// retention).
async fn remove(ctx: &UploadCtx<'_>, actor: &Actor, row: &UploadRow, reason: &str) -> Result<()> {
    let record = actor
        .audit(EventType::UploadDelete)
        .subject(&row.user_id)
        .object("upload", &row.id)
        .meta("channel_type", channel_type_of(row.cid.as_deref()))
        .meta("kind", row.kind.as_str())
        .meta("reason", reason);
    ctx.chat.audit.record(record).await?;
    ctx.chat.store.uploads.delete_upload(&row.id).await?;
    blobs(ctx)?.delete(&row.id).await.map_err(internal)?;
    Ok(())
}

/// Deletes the uploads a deleted message's attachments point at (`asset_url`, `image_url`,
/// `thumb_url` links of this server into the same channel).
pub async fn delete_attached(
    ctx: &UploadCtx<'_>,
    actor: &Actor,
    cid: &str,
    attachments: &[Value],
) -> Result<usize> {
    let mut ids: Vec<String> = attachments
        .iter()
        .flat_map(|a| {
            ["asset_url", "image_url", "thumb_url"].map(|k| a.get(k).and_then(Value::as_str))
        })
        .flatten()
        .filter_map(link::upload_id)
        .collect();
    ids.sort();
    ids.dedup();
    let mut n = 0;
    for id in ids {
        if let Some(row) = ctx.chat.store.uploads.find_upload(&id).await?
            && row.cid.as_deref() == Some(cid)
        {
            remove(ctx, actor, &row, "message_deleted").await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The channel and attachments of message `id` (read before it is deleted, so its files can
/// go with it: [`delete_attached`]).
pub async fn attachments_of(ctx: &Ctx<'_>, id: &str) -> Result<Option<(String, Vec<Value>)>> {
    Ok(ctx.store.messages.find_message(id).await?.map(|m| {
        let attachments = m
            .data
            .get("attachments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        (m.cid, attachments)
    }))
}

/// A file served back: its bytes (zeroized when dropped), sniffed type and name.
pub struct Download {
    pub bytes: Zeroizing<Vec<u8>>,
    pub mime_type: String,
    pub name: String,
    pub kind: String,
}

/// Who asks for a file: the user a signed link was issued to, or the caller of an
/// authenticated request.
pub enum Fetcher<'q> {
    Link(&'q link::Query),
    Caller(Actor),
}

/// Serves upload `id` to `fetcher` if it may still read where the file was uploaded.
pub async fn download(ctx: &UploadCtx<'_>, id: &str, fetcher: Fetcher<'_>) -> Result<Download> {
    let blobs = blobs(ctx)?;
    let actor = match fetcher {
        Fetcher::Link(q) => {
            link::verify(ctx, id, q).await?;
            let user: UserRow = ctx
                .chat
                .store
                .users
                .find_user(&q.user)
                .await?
                .filter(|u| u.deleted_at.is_none())
                .ok_or_else(|| Error::not_allowed("this link is no longer valid"))?;
            Actor::user(user)
        }
        Fetcher::Caller(actor) => actor,
    };
    let row = ctx
        .chat
        .store
        .uploads
        .find_upload(id)
        .await?
        .ok_or_else(|| Error::not_found("the file does not exist"))?;
    match &row.cid {
        Some(cid) => channel::load(&ctx.chat, &actor, cid)
            .await?
            .require_read()?,
        None => actor.authorize_app(&ctx.chat, "ReadAppFile")?,
    }
    let opened = blobs.open(&row.id).await.map_err(internal)?;
    let bytes = match opened {
        Some(Opened::Plain(b)) => b,
        None | Some(Opened::Shredded) => return Err(Error::not_found("the file does not exist")),
    };
    let name = match blobs
        .crypto
        .open_text(name_field(&row.id), &row.name)
        .await
        .map_err(internal)?
    {
        Opened::Plain(n) => n,
        Opened::Shredded => "file".to_string(),
    };
    ctx.chat
        .audit
        .record(
            actor
                .audit(EventType::UploadRead)
                .subject(&row.user_id)
                .object("upload", &row.id)
                .meta("channel_type", channel_type_of(row.cid.as_deref()))
                .meta("kind", row.kind.as_str()),
        )
        .await?;
    Ok(Download {
        bytes,
        mime_type: row.mime_type,
        name,
        kind: row.kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\x\\lab.pdf")), "lab.pdf");
        assert_eq!(clean_name(Some("a\r\nb\u{0}.txt")), "ab.txt");
        assert_eq!(clean_name(Some("..")), "file");
        assert_eq!(
            clean_name(Some("wundfoto-überweisung.jpg")),
            "wundfoto-überweisung.jpg"
        );
        assert_eq!(clean_name(None), "file");
    }

    #[test]
    fn rules_block_and_allow() {
        let rules = UploadRules {
            blocked_extensions: vec!["exe".into()],
            ..UploadRules::default()
        };
        assert!(check_rules(Kind::File, &rules, "application/pdf", "a.pdf").is_ok());
        assert!(check_rules(Kind::File, &rules, "application/octet-stream", "a.EXE").is_err());
        assert!(check_rules(Kind::Image, &rules, "application/pdf", "a.jpg").is_err());
    }
}
