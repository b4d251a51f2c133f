//! `WARD_RATE_LIMIT_*` and `WARD_TRUSTED_PROXIES`: the settings of the rate limits (the
//! limiters themselves are the edge's, `ratelimit`).

use std::net::IpAddr;

use anyhow::Context;

/// `WARD_RATE_LIMIT_*`: requests per minute (burst the same); 0 switches one limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub login_per_ip: u32,
    pub login_per_account: u32,
    pub totp_per_ip: u32,
    pub totp_per_account: u32,
    pub sso_per_ip: u32,
    pub sso_per_account: u32,
    pub chat_token_per_ip: u32,
    pub chat_token_per_account: u32,
    pub connect_per_ip: u32,
    pub connect_per_user: u32,
    pub writes_per_user: u32,
    /// `WARD_TRUSTED_PROXIES`: addresses or CIDR blocks whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login_per_ip: 60,
            login_per_account: 10,
            totp_per_ip: 60,
            totp_per_account: 20,
            sso_per_ip: 120,
            sso_per_account: 30,
            chat_token_per_ip: 600,
            chat_token_per_account: 60,
            // One address may be a NAT or a balancer not listed as a trusted proxy.
            connect_per_ip: 3000,
            connect_per_user: 300,
            writes_per_user: 1200,
            trusted_proxies: Vec::new(),
        }
    }
}

impl RateLimitConfig {
    /// The environment variable of each limit and the field it sets.
    pub fn variables(&mut self) -> [(&'static str, &mut u32); 11] {
        [
            ("WARD_RATE_LIMIT_LOGIN_PER_IP", &mut self.login_per_ip),
            (
                "WARD_RATE_LIMIT_LOGIN_PER_ACCOUNT",
                &mut self.login_per_account,
            ),
            ("WARD_RATE_LIMIT_TOTP_PER_IP", &mut self.totp_per_ip),
            (
                "WARD_RATE_LIMIT_TOTP_PER_ACCOUNT",
                &mut self.totp_per_account,
            ),
            ("WARD_RATE_LIMIT_SSO_PER_IP", &mut self.sso_per_ip),
            ("WARD_RATE_LIMIT_SSO_PER_ACCOUNT", &mut self.sso_per_account),
            (
                "WARD_RATE_LIMIT_CHAT_TOKEN_PER_IP",
                &mut self.chat_token_per_ip,
            ),
            (
                "WARD_RATE_LIMIT_CHAT_TOKEN_PER_ACCOUNT",
                &mut self.chat_token_per_account,
            ),
            ("WARD_RATE_LIMIT_CONNECT_PER_IP", &mut self.connect_per_ip),
            (
                "WARD_RATE_LIMIT_CONNECT_PER_USER",
                &mut self.connect_per_user,
            ),
            ("WARD_RATE_LIMIT_WRITES_PER_USER", &mut self.writes_per_user),
        ]
    }
}

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The rate-limit settings from the environment, over the defaults.
pub(super) fn from_env(env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<RateLimitConfig> {
    let mut rate_limits = RateLimitConfig::default();
    for (name, field) in rate_limits.variables() {
        if let Some(v) = env(name) {
            *field = v.trim().parse().with_context(|| {
                format!("{name} must be a number of requests per minute (0: no limit)")
            })?;
        }
    }
    if let Some(v) = env("WARD_TRUSTED_PROXIES") {
        rate_limits.trusted_proxies = v
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                Cidr::parse(p).with_context(|| {
                    format!(
                        "WARD_TRUSTED_PROXIES: {:?} is not an address or CIDR block",
                        p.trim()
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    Ok(rate_limits)
}
