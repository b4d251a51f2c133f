//! A steady send load: a few users each send a message every [`PERIOD`] over REST with
//! their own client-chosen ids, and every answer is kept (id, status, body, when, how long).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{KEY, TestApp};

/// Each sender's pace: with three senders, about 30 messages a second.
const PERIOD: Duration = Duration::from_millis(100);

/// Far above any answer the test accepts: a request that hangs shows up as a failure.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    /// 0: no HTTP answer (connection error or client timeout).
    pub status: u16,
    pub body: Value,
    pub at: Instant,
    pub took: Duration,
}

pub struct Load {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: watch::Sender<bool>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts one sender per user into channel `messaging:<channel>`; `text_len` pads the
    /// text (to fill a disk sooner).
    pub fn start(app: &TestApp, channel: &str, users: &[&str], text_len: usize) -> Self {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let http = reqwest::Client::builder()
            .timeout(CLIENT_TIMEOUT)
            .build()
            .unwrap();
        let url = format!(
            "{}/channels/messaging/{channel}/message?api_key={KEY}",
            app.base
        );
        let senders = users
            .iter()
            .map(|user| {
                let sender = Sender {
                    http: http.clone(),
                    url: url.clone(),
                    token: app.token(user),
                    text: format!("steady load {}", "x".repeat(text_len)),
                    outcomes: outcomes.clone(),
                };
                tokio::spawn(sender.run(stopped.clone()))
            })
            .collect();
        Self {
            outcomes,
            stop,
            senders,
        }
    }

    /// Every answer so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    /// Waits until `n` answers with `status` arrived after `since`; returns when the first
    /// of them arrived.
    pub async fn wait_for(&self, status: u16, n: usize, since: Instant, secs: u64) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.count(status, since) < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} answers with status {status}; the last ones: {:?}",
                self.outcomes().iter().rev().take(3).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.outcomes()
            .iter()
            .filter(|o| o.status == status && o.at > since)
            .map(|o| o.at)
            .min()
            .unwrap()
    }

    fn count(&self, status: u16, since: Instant) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.status == status && o.at > since)
            .count()
    }

    /// Stops the senders after their request in flight; returns every answer.
    pub async fn finish(mut self) -> Vec<Outcome> {
        self.stop.send_replace(true);
        for s in std::mem::take(&mut self.senders) {
            s.await.unwrap();
        }
        self.outcomes()
    }
}

struct Sender {
    http: reqwest::Client,
    url: String,
    token: String,
    text: String,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Sender {
    async fn run(self, stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*stop.borrow() {
            tick.tick().await;
            let outcome = self.send_one().await;
            self.outcomes.lock().unwrap().push(outcome);
        }
    }

    async fn send_one(&self) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let sent = self
            .http
            .post(&self.url)
            .header("Authorization", &self.token)
            .header("stream-auth-type", "jwt")
            .json(&json!({"message": {"id": id, "text": self.text}}))
            .send()
            .await;
        let (status, body) = match sent {
            Ok(res) => {
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        };
        Outcome {
            id,
            status,
            body,
            at: Instant::now(),
            took: started.elapsed(),
        }
    }
}
