//! Rate limits (GCRA, `governor` keyed limiters): per client address and per account on
//! password login, TOTP, the SSO callbacks, `POST /auth/chat-token` and WebSocket connects,
//! and per user on REST writes. Each limit is "N per minute" with a burst of N, so a
//! well-behaved client never waits and a guesser gets N tries a minute.
//!
//! A refusal is Stream's 429 (code 9) with `Retry-After`; the first refusal of a key in a
//! window is audited (the rest would flood the log with the attack itself). The client
//! address is the peer's, or the `X-Forwarded-For` hop a trusted proxy saw
//! (`WARD_TRUSTED_PROXIES`); IPv6 clients are keyed by their /64, which one host controls.
//! Memory is bounded by a periodic sweep that drops keys whose limit has fully recovered.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::extract::connect_info::Connected;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::serve::IncomingStream;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::{TcpListener, TcpStream};

use crate::app::AppState;
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::config::rate_limits::canonical;
pub use crate::config::rate_limits::{Cidr, RateLimitConfig};
use crate::http::error::ApiError;

/// The window a limit is stated over, and how long one refusal's audit record stands for
/// all refusals of its key.
const WINDOW: Duration = Duration::from_secs(60);
/// Longest key kept (account ids come from request bodies).
const MAX_KEY_CHARS: usize = 256;

/// One limit: what it protects and whom it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    LoginIp,
    LoginAccount,
    TotpIp,
    TotpAccount,
    SsoIp,
    SsoAccount,
    ChatTokenIp,
    ChatTokenAccount,
    ConnectIp,
    ConnectUser,
    WritesUser,
}

impl Limit {
    pub const ALL: [Limit; 11] = [
        Limit::LoginIp,
        Limit::LoginAccount,
        Limit::TotpIp,
        Limit::TotpAccount,
        Limit::SsoIp,
        Limit::SsoAccount,
        Limit::ChatTokenIp,
        Limit::ChatTokenAccount,
        Limit::ConnectIp,
        Limit::ConnectUser,
        Limit::WritesUser,
    ];

    /// The name in audit records (`limit` meta key).
    pub fn name(self) -> &'static str {
        match self {
            Limit::LoginIp => "login.ip",
            Limit::LoginAccount => "login.account",
            Limit::TotpIp => "totp.ip",
            Limit::TotpAccount => "totp.account",
            Limit::SsoIp => "sso.ip",
            Limit::SsoAccount => "sso.account",
            Limit::ChatTokenIp => "chat_token.ip",
            Limit::ChatTokenAccount => "chat_token.account",
            Limit::ConnectIp => "connect.ip",
            Limit::ConnectUser => "connect.user",
            Limit::WritesUser => "writes.user",
        }
    }

    fn per_account(self) -> bool {
        matches!(
            self,
            Limit::LoginAccount
                | Limit::TotpAccount
                | Limit::SsoAccount
                | Limit::ChatTokenAccount
                | Limit::ConnectUser
                | Limit::WritesUser
        )
    }
}

/// The limit's rate in `config`, per minute (0: off).
fn per_minute(config: &RateLimitConfig, limit: Limit) -> u32 {
    match limit {
        Limit::LoginIp => config.login_per_ip,
        Limit::LoginAccount => config.login_per_account,
        Limit::TotpIp => config.totp_per_ip,
        Limit::TotpAccount => config.totp_per_account,
        Limit::SsoIp => config.sso_per_ip,
        Limit::SsoAccount => config.sso_per_account,
        Limit::ChatTokenIp => config.chat_token_per_ip,
        Limit::ChatTokenAccount => config.chat_token_per_account,
        Limit::ConnectIp => config.connect_per_ip,
        Limit::ConnectUser => config.connect_per_user,
        Limit::WritesUser => config.writes_per_user,
    }
}

/// The key a client address is counted under: IPv4 as is, IPv6 by its /64.
fn ip_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(net))
        }
    }
}

/// The TCP peer of a connection, recorded by the listener (`into_make_service_with_connect_info`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The plain TCP listener: sets `TCP_NODELAY` on each connection (events are small frames:
/// send them at once, with no Nagle delay behind the REST reply) and records the peer.
pub struct PlainListener(pub TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = io.set_nodelay(true);
        (io, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, PlainListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, PlainListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The client's address as the limits count it; `None` when the server was reached without
/// a recorded peer (a router used in-process).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<Peer>>()
            .map(|c| c.0.0.ip());
        Ok(ClientIp(peer.map(|p| {
            client_ip(p, &parts.headers, &state.config.rate_limits.trusted_proxies)
        })))
    }
}

/// The peer, or, when the peer is a trusted proxy, the right-most `X-Forwarded-For` hop
/// that is not itself a trusted proxy (hops to its left can be written by the client).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|h| h.trim().parse::<IpAddr>().ok())
        .collect();
    let mut client = canonical(peer);
    for hop in hops.into_iter().rev() {
        client = canonical(hop);
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

/// Every keyed limiter of this node, and when each key's refusal was last audited.
pub struct RateLimits {
    limiters: HashMap<Limit, DefaultKeyedRateLimiter<String>>,
    audited: Mutex<HashMap<(Limit, String), Instant>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        let limiters = Limit::ALL
            .iter()
            .filter_map(|&l| {
                let n = NonZeroU32::new(per_minute(config, l))?;
                Some((l, RateLimiter::keyed(Quota::per_minute(n))))
            })
            .collect();
        Self {
            limiters,
            audited: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request of `key` against `limit`; `Err` holds how long to wait.
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), Duration> {
        let Some(limiter) = self.limiters.get(&limit) else {
            return Ok(());
        };
        let key: String = key.chars().take(MAX_KEY_CHARS).collect();
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// True for the first refusal of this key in a window (that one is audited).
    fn first_refusal(&self, limit: Limit, key: &str) -> bool {
        let now = Instant::now();
        let mut audited = self.audited.lock().unwrap_or_else(|e| e.into_inner());
        let key = (limit, key.chars().take(MAX_KEY_CHARS).collect::<String>());
        match audited.get(&key) {
            Some(at) if now.duration_since(*at) < WINDOW => false,
            _ => {
                audited.insert(key, now);
                true
            }
        }
    }

    /// Drops the state of keys that are back to a full burst and of old audit marks.
    pub fn sweep(&self) {
        for limiter in self.limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        let mut audited = self.audited.lock().unwrap_or_else(|e| e.into_inner());
        audited.retain(|_, at| now.duration_since(*at) < WINDOW);
        audited.shrink_to_fit();
    }

    /// Keys held, over all limiters (for tests and metrics).
    pub fn keys_held(&self) -> usize {
        self.limiters.values().map(|l| l.len()).sum()
    }
}

/// Sweeps every minute for as long as the server runs.
pub fn spawn_sweep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WINDOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            state.rate_limits.sweep();
        }
    })
}

/// What a refusal is audited as.
pub enum Audited<'a> {
    /// `auth.login_failed` (`method`: password, oidc, saml; `provider`).
    Login { method: &'a str, provider: &'a str },
    /// `auth.2fa` with `step` (verify, recovery).
    TwoFactor { step: &'a str },
    /// `authz.denied` with `action` and `via` (rest, ws).
    Denied { action: &'a str, via: &'a str },
}

/// Counts a request against `limit` for `key`; over the limit, audits the first refusal of
/// the window and answers 429 (code 9) with `Retry-After`. `account` names the user the
/// record is about, when known (never for per-address limits before a login).
pub async fn enforce(
    state: &AppState,
    limit: Limit,
    key: &str,
    account: Option<&str>,
    audited: Audited<'_>,
) -> Result<(), ApiError> {
    let Err(wait) = state.rate_limits.check(limit, key) else {
        return Ok(());
    };
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    if state.rate_limits.first_refusal(limit, key) {
        let event = match audited {
            Audited::Login { method, provider } => AuditEvent::new(EventType::LoginFailed)
                .outcome(Outcome::Denied)
                .meta("method", method)
                .meta("provider", provider.chars().take(64).collect::<String>()),
            Audited::TwoFactor { step } => AuditEvent::new(EventType::TwoFactor)
                .outcome(Outcome::Denied)
                .meta("step", step),
            Audited::Denied { action, via } => AuditEvent::new(EventType::AuthzDenied)
                .outcome(Outcome::Denied)
                .meta("action", action)
                .meta("via", via),
        }
        .meta("reason", "rate_limited")
        .meta("limit", limit.name());
        // Per-account limits name the account (as a pseudonym); per-address ones don't, and
        // the address itself is personal data with no subject to seal it under.
        let event = match account.filter(|_| limit.per_account()) {
            Some(a) => event.actor(a).subject(a),
            None => event,
        };
        if let Err(e) = state.audit.record(event).await {
            tracing::error!(error = %e, limit = limit.name(), "could not record a rate-limit refusal");
        }
    }
    tracing::info!(limit = limit.name(), retry_after = secs, "rate limited");
    Err(ApiError::rate_limited(secs))
}

/// The per-address limit for a client whose address is known (always, behind the real
/// listener).
pub async fn enforce_ip(
    state: &AppState,
    limit: Limit,
    ip: ClientIp,
    audited: Audited<'_>,
) -> Result<(), ApiError> {
    match ip.0 {
        Some(ip) => enforce(state, limit, &ip_key(ip), None, audited).await,
        None => Ok(()),
    }
}

/// The limit on SSO logins per account, as auth checks it once an identity is verified:
/// a replayed or scripted IdP flow cannot mint sessions faster than people log in.
pub struct SsoLogins<'a>(pub &'a AppState);

#[async_trait::async_trait]
impl crate::auth::sso::LoginLimit for SsoLogins<'_> {
    async fn check(&self, login: &crate::auth::sso::ExternalLogin) -> crate::auth::Result<()> {
        enforce(
            self.0,
            Limit::SsoAccount,
            &login.user_id,
            Some(&login.user_id),
            Audited::Login {
                method: login.method,
                provider: &login.provider_id,
            },
        )
        .await
        .map_err(|e| crate::auth::Error::RateLimited(e.retry_after.unwrap_or(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4, 10.0.0.7".parse().unwrap());
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(client_ip(peer, &h, &[]), peer, "no trusted proxies");
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap(),
            "the first untrusted hop from the right"
        );
        let outside: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(client_ip(outside, &h, &trusted), outside, "untrusted peer");
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(peer, &h, &trusted), peer, "unparsable header");
    }

    #[test]
    fn cidr_and_ipv6_keys() {
        let c = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(c.contains("192.168.1.200".parse().unwrap()));
        assert!(!c.contains("192.168.2.1".parse().unwrap()));
        assert!(c.contains("::ffff:192.168.1.3".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(
            ip_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            ip_key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
    }

    #[test]
    fn a_limit_refuses_past_its_burst_and_zero_is_off() {
        let config = RateLimitConfig {
            login_per_ip: 2,
            login_per_account: 0,
            ..Default::default()
        };
        let limits = RateLimits::new(&config);
        assert!(limits.check(Limit::LoginIp, "a").is_ok());
        assert!(limits.check(Limit::LoginIp, "a").is_ok());
        let wait = limits.check(Limit::LoginIp, "a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= WINDOW, "{wait:?}");
        assert!(limits.check(Limit::LoginIp, "b").is_ok(), "another key");
        for _ in 0..100 {
            assert!(limits.check(Limit::LoginAccount, "a").is_ok());
        }
        assert!(limits.first_refusal(Limit::LoginIp, "a"));
        assert!(!limits.first_refusal(Limit::LoginIp, "a"));
    }
}
