//! The reminder sweep (issue 16 item 8): every node ticks [`crate::chat::reminder::deliver_due`],
//! which claims each due reminder exactly once across the cluster (the claim is a
//! conditional update in the shared database) and publishes through the bus.

use std::time::Duration;

use super::AppState;

/// How often a node looks for due reminders (a reminder is late by at most this much).
const TICK: Duration = Duration::from_secs(1);

pub fn spawn_reminder_sweep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if let Err(e) = crate::chat::reminder::deliver_due(&state.chat()).await {
                tracing::warn!(error = %e, "the reminder sweep failed; retrying at the next tick");
            }
        }
    })
}
