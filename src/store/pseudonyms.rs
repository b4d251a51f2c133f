//! The audit log's pseudonym directory: `(kind, natural id)` to a random pseudonym, so
//! entries name no one and erasure unlinks them.

use super::db::{BIND_LIMIT, Db, query};
use super::{StoreError, StoreResult};

/// Ids per lookup or delete. Far below [`BIND_LIMIT`] (two parameters per pair): a
/// user's erasure names every message they wrote, possibly 100,000.
const IDS_PER_STATEMENT: usize = 500;
const _: () = assert!(IDS_PER_STATEMENT * 3 <= BIND_LIMIT);

/// `(kind, natural_id) IN ((…), …)` lookups, one statement (callers chunk).
async fn select_pseudonyms(
    db: &Db,
    ids: &[(String, String)],
) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(
        "SELECT kind, natural_id, pseudonym FROM audit_pseudonyms WHERE (kind, natural_id) IN (",
    );
    for (i, (k, id)) in ids.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push_list([k, id]);
    }
    qb.push(")");
    let rows = qb.fetch_all(db).await?;
    rows.iter()
        .map(|r| {
            Ok((
                (
                    r.try_get::<String, _>("kind")?,
                    r.try_get::<String, _>("natural_id")?,
                ),
                r.try_get::<Vec<u8>, _>("pseudonym")?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}

pub(super) async fn resolve_pseudonyms(
    db: &Db,
    ids: &[(String, String)],
) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let have = select_pseudonyms(db, chunk).await?;
        let missing: Vec<&(String, String)> = chunk
            .iter()
            .filter(|k| !have.iter().any(|(h, _)| h == *k))
            .collect();
        found.extend(have);
        if missing.is_empty() {
            continue;
        }
        let mut qb = query("INSERT INTO audit_pseudonyms (kind, natural_id, pseudonym)");
        qb.push_values(&missing, |(k, id)| {
            let pseudonym = uuid::Uuid::new_v4().as_bytes().to_vec();
            vec![k.into(), id.into(), pseudonym.into()]
        });
        qb.push(" ON CONFLICT (kind, natural_id) DO NOTHING");
        qb.execute(db).await?;
        let missing: Vec<(String, String)> = missing.into_iter().cloned().collect();
        found.extend(select_pseudonyms(db, &missing).await?);
    }
    Ok(found)
}

pub(super) async fn find_pseudonyms(
    db: &Db,
    ids: &[(String, String)],
) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        found.extend(select_pseudonyms(db, chunk).await?);
    }
    Ok(found)
}

pub(super) async fn find_natural_ids(
    db: &Db,
    pseudonyms: &[Vec<u8>],
) -> StoreResult<Vec<(Vec<u8>, (String, String))>> {
    let mut out = Vec::new();
    for chunk in pseudonyms.chunks(IDS_PER_STATEMENT) {
        let mut qb =
            query("SELECT kind, natural_id, pseudonym FROM audit_pseudonyms WHERE pseudonym IN ");
        qb.push_list(chunk);
        for r in qb.fetch_all(db).await? {
            out.push((
                r.try_get::<Vec<u8>, _>("pseudonym")?,
                (
                    r.try_get::<String, _>("kind")?,
                    r.try_get::<String, _>("natural_id")?,
                ),
            ));
        }
    }
    Ok(out)
}

pub(super) async fn delete_pseudonyms(
    db: &Db,
    kind: &str,
    natural_ids: &[String],
) -> StoreResult<u64> {
    let mut n = 0;
    for chunk in natural_ids.chunks(IDS_PER_STATEMENT) {
        let mut qb = query("DELETE FROM audit_pseudonyms WHERE kind = ");
        qb.push_bind(kind.to_string()).push(" AND natural_id IN ");
        qb.push_list(chunk);
        n += qb.execute(db).await?;
    }
    Ok(n)
}
