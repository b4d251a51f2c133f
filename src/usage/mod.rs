//! Usage metering as Stream bills it.
//!
//! - **MAU**: a user id that opens at least one WebSocket in the calendar month (UTC),
//!   counted once however often or from how many devices or nodes it connects.
//! - **PCC**: the month's highest number of simultaneously open WebSockets across all
//!   nodes, every connection counted. Each node keeps the most connections it held at once
//!   within each [`GRANULARITY`] bucket and writes it to the shared database; the cluster
//!   figure for a bucket is the sum of the nodes' peaks, and PCC is the highest bucket. When
//!   nodes peak at different moments of the same bucket, the sum can exceed the true
//!   instantaneous peak by at most what those nodes gained within ten seconds.
//! - **Overage**: each figure against the plan; when both are over, the higher overage (in
//!   per cent of the plan) is the one billed, as on Stream's pricing page.
//!
//! Everything is in the database, so metering survives restarts and adds up across nodes.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::config::Plan;
use crate::store::{Store, StoreResult};
use crate::time::{Micros, now_micros};

/// Width of a connection-sampling bucket.
pub const GRANULARITY: Duration = Duration::from_secs(10);
const BUCKET_MICROS: i64 = GRANULARITY.as_micros() as i64;

pub fn bucket_of(at: Micros) -> Micros {
    at - at.rem_euclid(BUCKET_MICROS)
}

fn utc(at: Micros) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(at).unwrap_or_default()
}

pub fn month_of(at: Micros) -> String {
    utc(at).format("%Y-%m").to_string()
}

pub fn day_of(at: Micros) -> String {
    utc(at).format("%Y-%m-%d").to_string()
}

/// This node's meter: records connections as they open and flushes bucket peaks.
pub struct Meter {
    store: Store,
    node: String,
    /// (bucket start, most connections open at once in it). A sync mutex: held for a
    /// comparison, never across an await.
    current: Mutex<(Micros, i64)>,
}

impl Meter {
    pub fn new(store: Store, node: String) -> Self {
        Self {
            store,
            node,
            current: Mutex::new((bucket_of(now_micros()), 0)),
        }
    }

    /// A WebSocket opened for `user_id` at `at`; `open_now` is this node's open count after it.
    pub async fn connection_opened(
        &self,
        user_id: &str,
        at: Micros,
        open_now: usize,
    ) -> StoreResult<()> {
        self.observe_open(at, open_now as i64).await?;
        self.store
            .usage
            .insert_active_user(&month_of(at), &day_of(at), user_id)
            .await
    }

    /// Raises the current bucket's peak; writes the previous bucket when a new one starts.
    pub async fn observe_open(&self, at: Micros, open_now: i64) -> StoreResult<()> {
        let bucket = bucket_of(at);
        let finished = {
            let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if bucket > cur.0 {
                let done = *cur;
                *cur = (bucket, open_now);
                Some(done)
            } else if bucket == cur.0 {
                cur.1 = cur.1.max(open_now);
                None
            } else {
                // A late observation for an earlier bucket: raise that bucket directly.
                Some((bucket, open_now))
            }
        };
        if let Some((bucket, peak)) = finished {
            self.store
                .usage
                .upsert_connection_peak(&self.node, bucket, peak)
                .await?;
        }
        Ok(())
    }

    /// Writes the current bucket's peak so far (on every tick and at shutdown).
    pub async fn flush(&self) -> StoreResult<()> {
        let (bucket, peak) = *self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.store
            .usage
            .upsert_connection_peak(&self.node, bucket, peak)
            .await
    }

    /// Samples this node every bucket, so connections held across buckets count in each.
    pub async fn run_sampler(&self, open_now: impl Fn() -> usize) {
        let mut tick = tokio::time::interval(GRANULARITY);
        loop {
            tick.tick().await;
            let now = now_micros();
            if let Err(e) = self
                .observe_open(now, open_now() as i64)
                .await
                .and(self.flush().await)
            {
                tracing::warn!(error = %e, "could not record connection peak");
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DailyUsage {
    pub day: String,
    pub active_users: i64,
    pub cumulative_mau: i64,
    pub peak_connections: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overage {
    pub mau_units: u64,
    pub mau_percent: f64,
    pub pcc_units: u64,
    pub pcc_percent: f64,
    /// `"mau"` or `"pcc"`: the overage billed (the higher in per cent), if any.
    pub billed: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub month: String,
    pub mau: i64,
    pub pcc: i64,
    pub pcc_at: Option<String>,
    pub granularity_seconds: u64,
    pub plan: Plan,
    pub overage: Overage,
    pub daily: Vec<DailyUsage>,
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Plan", 2)?;
        st.serialize_field("mau", &self.mau)?;
        st.serialize_field("pcc", &self.pcc)?;
        st.end()
    }
}

/// Parses `YYYY-MM` into the month's first day.
pub fn parse_month(month: &str) -> Option<NaiveDate> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

fn over(value: i64, limit: Option<u64>) -> (u64, f64) {
    match limit {
        Some(l) if l > 0 && value as u64 > l => {
            let units = value as u64 - l;
            (units, (units as f64 / l as f64 * 10_000.0).round() / 100.0)
        }
        _ => (0, 0.0),
    }
}

/// The usage report of a calendar month (UTC).
pub async fn report(store: &Store, month: &str, plan: Plan) -> anyhow::Result<Report> {
    let first = parse_month(month).ok_or_else(|| anyhow::anyhow!("month must be YYYY-MM"))?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .expect("valid date");
    let start = first
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    let end = next
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();

    let new_by_day = store.usage.count_new_active_users_by_day(month).await?;
    let daily_users = store.usage.count_daily_users(month).await?;
    let peaks = store.usage.find_connection_peaks(start, end).await?;
    let mau: i64 = new_by_day.iter().map(|(_, n)| n).sum();
    let (pcc_bucket, pcc) = peaks
        .iter()
        .copied()
        .max_by_key(|(b, p)| (*p, -*b))
        .unwrap_or((0, 0));

    let mut daily = Vec::new();
    let mut cumulative = 0;
    let mut day = first;
    while day < next {
        let key = day.format("%Y-%m-%d").to_string();
        cumulative += new_by_day
            .iter()
            .find(|(d, _)| *d == key)
            .map_or(0, |(_, n)| *n);
        let active = daily_users
            .iter()
            .find(|(d, _)| *d == key)
            .map_or(0, |(_, n)| *n);
        let peak = peaks
            .iter()
            .filter(|(b, _)| day_of(*b) == key)
            .map(|(_, p)| *p)
            .max()
            .unwrap_or(0);
        daily.push(DailyUsage {
            day: key,
            active_users: active,
            cumulative_mau: cumulative,
            peak_connections: peak,
        });
        day = day.succ_opt().expect("a next day");
    }
    let (mau_units, mau_percent) = over(mau, plan.mau);
    let (pcc_units, pcc_percent) = over(pcc, plan.pcc);
    let billed = match (mau_units > 0, pcc_units > 0) {
        (false, false) => None,
        (true, false) => Some("mau"),
        (false, true) => Some("pcc"),
        (true, true) => Some(if pcc_percent > mau_percent {
            "pcc"
        } else {
            "mau"
        }),
    };
    Ok(Report {
        month: month.to_string(),
        mau,
        pcc,
        pcc_at: (pcc > 0).then(|| crate::time::rfc3339(pcc_bucket)),
        granularity_seconds: GRANULARITY.as_secs(),
        plan,
        overage: Overage {
            mau_units,
            mau_percent,
            pcc_units,
            pcc_percent,
            billed,
        },
        daily,
    })
}

/// The report as a readable table (`ward usage report`).
pub fn render_table(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let plan = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let _ = writeln!(
        out,
        "Usage for {} (UTC; connection peaks sampled per {} s)",
        r.month, r.granularity_seconds
    );
    let _ = writeln!(
        out,
        "  MAU  {:>8}   plan {:>8}   overage {:>6} ({:.2}%)",
        r.mau,
        plan(r.plan.mau),
        r.overage.mau_units,
        r.overage.mau_percent
    );
    let _ = writeln!(
        out,
        "  PCC  {:>8}   plan {:>8}   overage {:>6} ({:.2}%)   at {}",
        r.pcc,
        plan(r.plan.pcc),
        r.overage.pcc_units,
        r.overage.pcc_percent,
        r.pcc_at.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  billed overage: {}",
        r.overage.billed.unwrap_or("none")
    );
    let _ = writeln!(
        out,
        "\n  day          active   MAU to date   peak connections"
    );
    for d in r
        .daily
        .iter()
        .filter(|d| d.active_users > 0 || d.peak_connections > 0)
    {
        let _ = writeln!(
            out,
            "  {}  {:>6}   {:>11}   {:>16}",
            d.day, d.active_users, d.cumulative_mau, d.peak_connections
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_calendar_keys_are_utc() {
        let t = 1_764_547_199_999_999; // 2025-11-30T23:59:59.999999Z
        assert_eq!(month_of(t), "2025-11");
        assert_eq!(day_of(t + 1), "2025-12-01");
        assert_eq!(bucket_of(t) % BUCKET_MICROS, 0);
        assert!(parse_month("2026-13").is_none());
        assert!(parse_month("26-1").is_none());
    }

    #[test]
    fn overage_is_measured_against_the_plan() {
        assert_eq!(over(120, Some(100)), (20, 20.0));
        assert_eq!(over(80, Some(100)), (0, 0.0));
        assert_eq!(over(80, None), (0, 0.0));
    }
}
