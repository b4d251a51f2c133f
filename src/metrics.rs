//! Process metrics in the Prometheus text exposition format (`GET /metrics`): open
//! connections, events delivered, slow consumers closed, request latency, bus lag.
//! Hand-rolled with atomics: a handful of series does not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds in seconds, shared by the latency histograms.
const BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        for (i, bound) in BOUNDS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BOUNDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (method, route template) → latency. Route templates keep the label set small.
    http: Mutex<BTreeMap<(String, String), Histogram>>,
    pub bus_lag: Histogram,
    pub bus_published: AtomicU64,
    pub bus_received: AtomicU64,
    pub bus_dropped: AtomicU64,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        http.entry((method.to_string(), route.to_string()))
            .or_default()
            .observe(seconds);
    }

    pub fn render_http(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP ward_http_request_duration_seconds REST request latency."
        );
        let _ = writeln!(out, "# TYPE ward_http_request_duration_seconds histogram");
        let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        for ((method, route), h) in http.iter() {
            h.render(
                out,
                "ward_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{route}\""),
            );
        }
    }

    pub fn render_bus(&self, out: &mut String) {
        counter(
            out,
            "ward_bus_published_total",
            "Events and state reports published to the cross-node bus.",
            self.bus_published.load(Ordering::Relaxed),
        );
        counter(
            out,
            "ward_bus_received_total",
            "Frames received from other nodes.",
            self.bus_received.load(Ordering::Relaxed),
        );
        counter(
            out,
            "ward_bus_dropped_total",
            "Frames not published because the bus was down or its queue full.",
            self.bus_dropped.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP ward_bus_lag_seconds Time from publish on one node to receipt on another."
        );
        let _ = writeln!(out, "# TYPE ward_bus_lag_seconds histogram");
        self.bus_lag.render(out, "ward_bus_lag_seconds", "");
    }
}

pub fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

pub fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.observe_request("GET", "/app", 0.003);
        m.observe_request("GET", "/app", 0.2);
        let mut out = String::new();
        m.render_http(&mut out);
        assert!(out.contains(r#"ward_http_request_duration_seconds_bucket{method="GET",route="/app",le="0.005"} 1"#), "{out}");
        assert!(out.contains(
            r#"ward_http_request_duration_seconds_bucket{method="GET",route="/app",le="0.25"} 2"#
        ));
        assert!(
            out.contains(
                r#"ward_http_request_duration_seconds_count{method="GET",route="/app"} 2"#
            )
        );
    }
}
