//! Data-subject export (GDPR Art. 15 access, Art. 20 portability): everything
//! `policies/data_classification.toml` marks `gdpr = "export"` about one user, in a ZIP whose
//! manifest is signed with the audit log key, so the recipient can check offline that the
//! archive is complete and untouched (README "GDPR export" is the format).
//!
//! - **Only the subject's data.** Their profile, their own messages (decrypted) and the
//!   reactions they left, their memberships and read state (channel ids, never the channel's
//!   other members or messages), their interactive sessions (never the session id hash), and
//!   the audit entries where they are actor or subject. In those entries other people's ids
//!   and personal data are withheld (Art. 15(4)); the pseudonyms and entry bytes stay, so each
//!   entry's inclusion proof still checks.
//! - **Streamed.** Messages and audit entries go into the ZIP a page at a time; the ZIP is
//!   written on the blocking pool, page by page, to `<out>.partial`, and renamed to `out` only
//!   once it is complete and the export is recorded in the audit log (`gdpr.export`).
//! - **Verifiable.** `manifest.json` lists each file with its SHA-256, size and record count;
//!   `manifest.sig` is a signed note over [`Manifest::signed_text`]; [`verify_export`] checks
//!   both, every file, and every audit entry's inclusion proof against the included
//!   checkpoint.

mod archive;
mod audit;
mod columns;
mod job;
mod own;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventType, Outcome};
use crate::gdpr::Ctx;
use crate::gdpr::error::{Error, Result};
use crate::store::{Cursor, MessageRow, ReactionRow};
use crate::time::{Micros, rfc3339};
use archive::Archive;
pub use columns::EXPORTED_COLUMNS;
pub use job::{
    DOWNLOAD_SECS, ExportJob, ExportPayload, download_signature, download_url, task_dir,
};
pub use verify::{verify_archive, verify_export};

/// The `format` of the manifest and the first line of the signed text.
pub const FORMAT: &str = "ward-gdpr-export/v1";

/// Rows per query and per write into the ZIP.
const PAGE: i64 = 500;

/// The manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub user_id: String,
    pub created_at: String,
    /// Every file of the archive except `manifest.json` and `manifest.sig`, in ZIP order.
    pub files: Vec<FileEntry>,
    /// The audit log key that signed `manifest.sig` and `audit_checkpoint.txt`.
    pub verifier_key: String,
    /// The size of the signed tree the audit entries' inclusion proofs lead to.
    pub audit_tree_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    /// SHA-256 of the file's bytes (uncompressed), lowercase hex.
    pub sha256: String,
    pub bytes: u64,
    /// Records: lines of an `.ndjson` file, elements of a `.json` array, 1 otherwise.
    pub count: u64,
}

impl Manifest {
    /// The body of the signed note in `manifest.sig`: every manifest field, one per line,
    /// then one line per file, in manifest order:
    ///
    /// ```text
    /// ward-gdpr-export/v1
    /// user <user id>
    /// created <created_at>
    /// audit-tree-size <audit_tree_size>
    /// verifier-key <verifier_key>
    /// file <sha256 hex> <bytes> <count> <name>
    /// ```
    ///
    /// No field may contain whitespace or control characters, so the text maps back to one
    /// manifest only.
    pub fn signed_text(&self) -> String {
        let mut text = format!(
            "{}\nuser {}\ncreated {}\naudit-tree-size {}\nverifier-key {}\n",
            self.format, self.user_id, self.created_at, self.audit_tree_size, self.verifier_key
        );
        for f in &self.files {
            text.push_str(&format!(
                "file {} {} {} {}\n",
                f.sha256, f.bytes, f.count, f.name
            ));
        }
        text
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// One export and who asked for it (for its audit record).
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub user_id: String,
    /// The user who asked (a compliance officer); `None` for the operator's shell.
    pub actor: Option<String>,
    /// The job running it, if any.
    pub task_id: Option<String>,
}

/// Progress: records written (messages and audit entries) of the total counted up front.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// Exports one user to the ZIP `out` (see [`export`]).
pub async fn export_user(
    state: &Ctx<'_>,
    user_id: &str,
    out: &Path,
    progress: Progress<'_>,
) -> Result<Manifest> {
    let request = ExportRequest {
        user_id: user_id.to_string(),
        ..ExportRequest::default()
    };
    export(state, &request, out, progress).await
}

/// Exports several users, one archive each (`<dir>/<user id>.zip`): each data subject gets
/// their own file, which holds nobody else's data. `progress` gets the user's index too.
pub async fn export_users(
    state: &Ctx<'_>,
    user_ids: &[String],
    dir: &Path,
    progress: &mut (dyn FnMut(usize, u64, u64) + Send),
) -> Result<Vec<(PathBuf, Manifest)>> {
    let mut out = Vec::with_capacity(user_ids.len());
    for (i, id) in user_ids.iter().enumerate() {
        let path = dir.join(format!("{id}.zip"));
        let mut each = |done, total| progress(i, done, total);
        let manifest = export_user(state, id, &path, &mut each).await?;
        out.push((path, manifest));
    }
    Ok(out)
}

/// Writes the archive to `<out>.partial`, records the export in the audit log (subject: the
/// exported user), then renames it to `out`. On failure nothing is left at `out`, and the
/// attempt is recorded as failed.
pub async fn export(
    state: &Ctx<'_>,
    request: &ExportRequest,
    out: &Path,
    progress: Progress<'_>,
) -> Result<Manifest> {
    crate::chat::validate_user_id(&request.user_id)
        .map_err(|_| Error::input("the user id is invalid"))?;
    if state
        .store
        .users
        .find_user(&request.user_id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("the user does not exist"));
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = write_archive(state, &request.user_id, &partial, progress).await;
    let recorded = record(state, request, written.is_ok()).await;
    let finished = match (written, recorded) {
        (Ok(manifest), Ok(())) => tokio::fs::rename(&partial, out)
            .await
            .context("moving the finished archive into place")
            .map(|()| manifest),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    };
    if finished.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    finished.map_err(|e| Error::internal(format!("GDPR export failed: {e:#}")))
}

async fn record(state: &Ctx<'_>, request: &ExportRequest, ok: bool) -> anyhow::Result<()> {
    let mut event = AuditEvent::new(EventType::GdprExport)
        .actor_opt(request.actor.as_deref())
        .subject(request.user_id.clone())
        .meta("step", if ok { "completed" } else { "failed" });
    if !ok {
        event = event.outcome(Outcome::Failed);
    }
    if let Some(task) = &request.task_id {
        event = event.object("task", task.clone()).meta("task_id", task);
    }
    Ok(state.audit.record(event).await?)
}

async fn write_archive(
    state: &Ctx<'_>,
    user_id: &str,
    path: &Path,
    progress: Progress<'_>,
) -> anyhow::Result<Manifest> {
    let store = &state.store;
    let user = store
        .users
        .find_user(user_id)
        .await?
        .context("the user disappeared")?;
    // Chain everything recorded so far, so the proofs lead to a checkpoint that covers it.
    state.audit.sync().await?;
    let checkpoint = store
        .audit
        .find_latest_checkpoint()
        .await?
        .context("the audit log has no checkpoint yet")?;
    let tree_size = checkpoint.size as u64;
    let pseudonym = store
        .audit
        .find_pseudonyms(&[("user".to_string(), user_id.to_string())])
        .await?
        .into_iter()
        .next()
        .map(|(_, p)| p);

    let total = count_messages(state, user_id).await?
        + audit::count_entries(store.audit.as_ref(), pseudonym.as_deref(), tree_size).await?;
    let mut done = 0u64;
    progress(done, total);
    let created_at = rfc3339(crate::time::now_micros());
    let mut zip = Archive::create(path.to_path_buf()).await?;

    zip.json_file("profile.json", &profile_json(&user), 1)
        .await?;

    zip.start("messages.ndjson").await?;
    let mut after = String::new();
    loop {
        let ids = store
            .messages
            .find_message_ids_by_author(user_id, &after, PAGE)
            .await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        let mut rows = store.messages.find_messages(&ids).await?;
        rows.retain(|m| m.user_id == user_id);
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        zip.lines(rows.iter().map(message_json)).await?;
        done += rows.len() as u64;
        progress(done, total.max(done));
    }
    zip.finish_file().await?;

    let channels = store.channels.find_channels_for_member(user_id).await?;
    let cids: Vec<String> = channels.iter().map(|c| c.cid.clone()).collect();
    let mut memberships: Vec<_> = store
        .channels
        .find_members(&cids)
        .await?
        .into_iter()
        .filter(|m| m.user_id == user_id)
        .collect();
    memberships.sort_by(|a, b| a.cid.cmp(&b.cid));
    let reads = store.channels.find_reads_for_user(user_id).await?;

    zip.start("reactions.ndjson").await?;
    let mut scanned: Vec<String> = cids.clone();
    scanned.extend(reads.iter().map(|(r, _)| r.cid.clone()));
    scanned.sort();
    scanned.dedup();
    write_reactions(state, user_id, &scanned, &mut zip).await?;
    zip.finish_file().await?;

    let memberships: Vec<Value> = memberships
        .iter()
        .map(|m| {
            json!({
                "cid": m.cid,
                "channel_role": m.channel_role,
                "created_at": rfc3339(m.created_at),
                "updated_at": rfc3339(m.updated_at),
                "pinned_at": m.pinned_at.map(rfc3339),
                "archived_at": m.archived_at.map(rfc3339),
                "hidden": m.hidden,
                "notifications_muted": m.notifications_muted,
                "invited": m.invited,
                "invite_accepted_at": m.invite_accepted_at.map(rfc3339),
                "invite_rejected_at": m.invite_rejected_at.map(rfc3339),
            })
        })
        .collect();
    let n = memberships.len() as u64;
    zip.json_file("memberships.json", &memberships, n).await?;
    let reads: Vec<Value> = reads
        .iter()
        .map(|(r, _)| {
            json!({
                "cid": r.cid,
                "last_read": rfc3339(r.last_read),
                "last_delivered_at": r.last_delivered_at.map(rfc3339),
            })
        })
        .collect();
    let n = reads.len() as u64;
    zip.json_file("read_state.json", &reads, n).await?;
    // The subject's unsent drafts and their reminders (issue 16).
    let drafts = own::drafts(store, user_id).await?;
    zip.json_file("drafts.json", &drafts, drafts.len() as u64)
        .await?;
    let reminders = own::reminders(store, user_id).await?;
    zip.json_file("reminders.json", &reminders, reminders.len() as u64)
        .await?;
    let sessions: Vec<Value> = store
        .identity
        .find_sessions_of(user_id)
        .await?
        .iter()
        .map(|s| {
            json!({
                "method": s.method,
                "provider": s.provider,
                "mfa": s.mfa,
                "created_at": rfc3339(s.created_at),
                "last_seen": rfc3339(s.last_seen),
                "expires_at": rfc3339(s.expires_at),
                "revoked_at": s.revoked_at.map(rfc3339),
            })
        })
        .collect();
    let n = sessions.len() as u64;
    zip.json_file("sessions.json", &sessions, n).await?;

    zip.start("audit.ndjson").await?;
    if let Some(p) = &pseudonym {
        let mut step = |n: u64| {
            done += n;
            progress(done, total.max(done));
        };
        audit::write_entries(state, user_id, p, tree_size, &mut zip, &mut step).await?;
    }
    zip.finish_file().await?;
    zip.start("audit_checkpoint.txt").await?;
    zip.write(checkpoint.note.into_bytes(), 1).await?;
    zip.finish_file().await?;

    let manifest = Manifest {
        format: FORMAT.to_string(),
        user_id: user_id.to_string(),
        created_at,
        files: zip.files().to_vec(),
        verifier_key: state.audit.verifier_key.clone(),
        audit_tree_size: tree_size,
    };
    let signature = state.audit.sign_note(&manifest.signed_text())?;
    zip.close(
        serde_json::to_vec_pretty(&manifest)?,
        signature.into_bytes(),
    )
    .await?;
    progress(done, done);
    Ok(manifest)
}

fn profile_json(u: &crate::store::UserRow) -> Value {
    json!({
        "id": u.id,
        "role": u.role,
        "data": u.data,
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.updated_at),
        "last_active": u.last_active.map(rfc3339),
        "deactivated_at": u.deactivated_at.map(rfc3339),
        "banned": u.banned,
    })
}

fn message_json(m: &MessageRow) -> Value {
    json!({
        "id": m.id,
        "cid": m.cid,
        "type": m.kind,
        "text": m.text,
        "data": m.data,
        "parent_id": m.parent_id,
        "show_in_channel": m.show_in_channel,
        "silent": m.silent,
        "pinned": m.pinned,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "deleted_at": m.deleted_at.map(rfc3339),
        "message_text_updated_at": m.text_updated_at.map(rfc3339),
    })
}

fn reaction_json(r: &ReactionRow) -> Value {
    json!({
        "message_id": r.message_id,
        "type": r.kind,
        "score": r.score,
        "data": r.data,
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    })
}

async fn count_messages(state: &Ctx<'_>, user_id: &str) -> anyhow::Result<u64> {
    let (mut n, mut after) = (0u64, String::new());
    loop {
        let ids = state
            .store
            .messages
            .find_message_ids_by_author(user_id, &after, 10 * PAGE)
            .await?;
        let Some(last) = ids.last() else {
            return Ok(n);
        };
        n += ids.len() as u64;
        after = last.clone();
    }
}

/// The reactions the subject left: on their own messages, and on the other messages of the
/// channels they belong to or have read (threads included). The store has no lookup of
/// reactions by user, so those channels are scanned a page at a time.
async fn write_reactions(
    state: &Ctx<'_>,
    user_id: &str,
    cids: &[String],
    zip: &mut Archive,
) -> anyhow::Result<()> {
    let messages = &state.store.messages;
    let mut after = String::new();
    loop {
        let ids = messages
            .find_message_ids_by_author(user_id, &after, PAGE)
            .await?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        write_reactions_on(state, user_id, &ids, zip).await?;
    }
    let start = Cursor::After {
        at: Micros::MIN,
        id: String::new(),
        inclusive: true,
    };
    let next = |m: &MessageRow| Cursor::After {
        at: m.created_at,
        id: m.id.clone(),
        inclusive: false,
    };
    for cid in cids {
        let mut cursor = start.clone();
        loop {
            let page = messages
                .find_channel_messages(cid, None, &cursor, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            cursor = next(last);
            let mut ids: Vec<String> = page
                .iter()
                .filter(|m| m.user_id != user_id)
                .map(|m| m.id.clone())
                .collect();
            for parent in page.iter().filter(|m| m.reply_count > 0) {
                let mut thread = start.clone();
                loop {
                    let replies = messages.find_replies(&parent.id, &thread, PAGE).await?;
                    let Some(last) = replies.last() else { break };
                    thread = next(last);
                    // Replies shown in the channel came with the channel's page.
                    ids.extend(
                        replies
                            .iter()
                            .filter(|m| m.user_id != user_id && !m.show_in_channel)
                            .map(|m| m.id.clone()),
                    );
                }
            }
            write_reactions_on(state, user_id, &ids, zip).await?;
        }
    }
    Ok(())
}

async fn write_reactions_on(
    state: &Ctx<'_>,
    user_id: &str,
    message_ids: &[String],
    zip: &mut Archive,
) -> anyhow::Result<()> {
    if message_ids.is_empty() {
        return Ok(());
    }
    let mut mine: Vec<ReactionRow> = state
        .store
        .messages
        .find_reactions(message_ids)
        .await?
        .into_iter()
        .filter(|r| r.user_id == user_id)
        .collect();
    mine.sort_by(|a, b| (&a.message_id, &a.kind).cmp(&(&b.message_id, &b.kind)));
    zip.lines(mine.iter().map(reaction_json)).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_column_marked_export_is_exported_or_left_out_with_a_reason() {
        let doc: toml::Table =
            toml::from_str(include_str!("../../policies/data_classification.toml")).unwrap();
        let mut marked = HashSet::new();
        for (table, columns) in &doc {
            for (column, spec) in columns.as_table().unwrap() {
                if spec.get("gdpr").and_then(|g| g.as_str()) == Some("export") {
                    marked.insert((table.as_str(), column.as_str()));
                }
            }
        }
        let listed: HashSet<(&str, &str)> =
            EXPORTED_COLUMNS.iter().map(|(t, c, _)| (*t, *c)).collect();
        let mut missing: Vec<_> = marked.difference(&listed).collect();
        missing.sort();
        assert!(missing.is_empty(), "not exported: {missing:?}");
        let mut stale: Vec<_> = listed.difference(&marked).collect();
        stale.sort();
        assert!(stale.is_empty(), "no longer marked export: {stale:?}");
    }

    /// Jobs run on spawned tasks: the export must be a `Send` future (checked at compile
    /// time).
    #[allow(dead_code)]
    fn the_export_future_is_send(state: &Ctx<'_>, out: &Path, progress: Progress<'_>) {
        fn send<T: Send>(_: T) {}
        send(export(state, &ExportRequest::default(), out, progress));
    }

    #[test]
    fn the_signed_text_lists_every_field_and_file() {
        let m = Manifest {
            format: FORMAT.into(),
            user_id: "ann".into(),
            created_at: "2026-01-02T03:04:05.000006Z".into(),
            files: vec![FileEntry {
                name: "messages.ndjson".into(),
                sha256: "ab".repeat(32),
                bytes: 10,
                count: 2,
            }],
            verifier_key: "log+01020304+AQ==".into(),
            audit_tree_size: 7,
        };
        assert_eq!(
            m.signed_text(),
            format!(
                "ward-gdpr-export/v1\nuser ann\ncreated 2026-01-02T03:04:05.000006Z\n\
                 audit-tree-size 7\nverifier-key log+01020304+AQ==\nfile {} 10 2 messages.ndjson\n",
                "ab".repeat(32)
            )
        );
    }
}
