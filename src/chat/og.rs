//! `GET /og?url=…` (the SDK's `client.enrichURL`): OpenGraph data of a link, for previews.
//!
//! Off unless the operator turns it on (`WARD_URL_ENRICHMENT=true`): fetching a link a
//! patient typed tells that link's server who is reading it, and the URL itself can carry
//! PHI. When on, the fetch is bounded: http(s) only, default ports only, every address the
//! name resolves to must be public (no loopback, private, link-local, CGNAT, multicast or
//! unspecified addresses; loopback only with the test setting), the connection is pinned
//! to the checked address (no DNS rebinding), redirects are followed by hand (at most 3,
//! each target checked again), 5 s in all, at most 512 KiB of HTML read. No cookies, no
//! credentials, no URL in logs.
//!
//! `url_enrichment` in the channel config stays false either way: that flag means the
//! server enriches links in sent messages, which Ward never does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::chat::{Actor, Ctx, Error, Result};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 512 * 1024;
const MAX_REDIRECTS: usize = 3;
const MAX_URL_LEN: usize = 2048;

/// The operator's choice (`WARD_URL_ENRICHMENT`), and the test-only loopback exception.
pub use crate::config::UrlEnrichment as OgSettings;

/// `GET /og`.
pub async fn enrich_url(
    ctx: &Ctx<'_>,
    actor: &Actor,
    settings: OgSettings,
    url: &str,
) -> Result<Value> {
    actor.require_user()?;
    actor.authorize_app(ctx, "EnrichUrl")?;
    if !settings.enabled {
        return Err(Error::input(
            "URL enrichment is turned off on this server (WARD_URL_ENRICHMENT)",
        ));
    }
    if url.len() > MAX_URL_LEN || url.chars().any(char::is_control) {
        return Err(Error::input("url is not a valid http(s) URL"));
    }
    let html = tokio::time::timeout(TIMEOUT, fetch(url, settings))
        .await
        .map_err(|_| Error::input("the link did not answer in time"))??;
    let mut out = parse(&html);
    out.insert("og_scrape_url".into(), url.into());
    Ok(Value::Object(out))
}

/// Whether an address may be fetched: public unicast only (loopback when allowed).
pub fn allowed_ip(ip: IpAddr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return allowed_ip(IpAddr::V4(v4), allow_loopback);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[0] == 0x0064)
        }
    }
}

fn bad_url() -> Error {
    Error::input("url is not a valid http(s) URL")
}

/// Splits `scheme://host[:port]/path` into what the checks need.
fn target(url: &str) -> Result<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://").ok_or_else(bad_url)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad_url()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad_url());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad_url)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_url())?,
            None if after.is_empty() => default_port,
            None => return Err(bad_url()),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad_url())?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad_url());
    }
    Ok((scheme, host.to_ascii_lowercase(), port))
}

async fn checked_address(host: &str, port: u16, settings: OgSettings) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Error::input("the link's host does not resolve"))?
        .collect();
    if addrs.is_empty()
        || addrs
            .iter()
            .any(|a| !allowed_ip(a.ip(), settings.allow_loopback))
    {
        return Err(Error::input(
            "the link points to an address that is not fetched",
        ));
    }
    Ok(addrs[0])
}

async fn fetch(url: &str, settings: OgSettings) -> Result<String> {
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let (_, host, port) = target(&current)?;
        if !settings.allow_loopback && port != 80 && port != 443 {
            return Err(Error::input("the link uses a port that is not fetched"));
        }
        let addr = checked_address(&host, port, settings).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve(&host, addr)
            .no_proxy()
            .build()
            .map_err(|_| Error::input("the link could not be fetched"))?;
        let mut res = client
            .get(&current)
            .header("accept", "text/html")
            .header("user-agent", "Ward link preview")
            .send()
            .await
            .map_err(|_| Error::input("the link could not be fetched"))?;
        if res.status().is_redirection() {
            let next = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Error::input("the link redirects nowhere"))?;
            current = res.url().join(next).map_err(|_| bad_url())?.to_string();
            continue;
        }
        if !res.status().is_success() {
            return Err(Error::input("the link answered with an error"));
        }
        let html = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
        if !html {
            return Err(Error::input("the link is not an HTML page"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|_| Error::input("the link could not be read"))?
        {
            let room = MAX_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BYTES {
                break;
            }
        }
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    Err(Error::input("the link redirects too often"))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in one tag's text (`<meta property="og:title" …>`).
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0
            || lower[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let offset = tag.len() - rest.len() + 1;
        let value = tag[offset..].trim_start();
        let quote = value.chars().next()?;
        return if quote == '"' || quote == '\'' {
            value[1..].split(quote).next().map(unescape)
        } else {
            value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .map(unescape)
        };
    }
    None
}

/// OpenGraph fields of a page, in the SDK's `OGAttachment` names.
pub fn parse(html: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<meta") {
        let start = from + i;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        from = end;
        let (Some(key), Some(content)) = (
            attr(tag, "property").or_else(|| attr(tag, "name")),
            attr(tag, "content"),
        ) else {
            continue;
        };
        let field = match key.to_ascii_lowercase().as_str() {
            "og:title" => "title",
            "og:description" => "text",
            "og:image" | "og:image:url" => "image_url",
            "og:url" => "title_link",
            "og:site_name" => "author_name",
            "og:type" => "type",
            _ => continue,
        };
        let content: String = content.chars().take(1000).collect();
        out.entry(field).or_insert(content.into());
    }
    if let Some(img) = out.get("image_url").cloned() {
        out.insert("thumb_url".into(), img);
    }
    if !out.contains_key("title")
        && let Some(t) = lower.find("<title>")
        && let Some(e) = lower[t..].find("</title>")
    {
        let title: String = unescape(html[t + 7..t + e].trim())
            .chars()
            .take(1000)
            .collect();
        out.insert("title".into(), title.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn og_tags_are_read_in_any_quoting_and_case() {
        let got = parse(
            "<html><head><TITLE>plain</TITLE><meta property=\"og:title\" content=\"Ward &amp; co\">\
             <META name='og:description' content='Self-hosted chat'><meta content=\"/x.png\" property=og:image></head>",
        );
        assert_eq!(got["title"], "Ward & co");
        assert_eq!(got["text"], "Self-hosted chat");
        assert_eq!(got["image_url"], "/x.png");
    }

    #[test]
    fn only_public_addresses_are_fetched() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!allowed_ip(ip.parse().unwrap(), false), "{ip}");
        }
        assert!(allowed_ip("93.184.216.34".parse().unwrap(), false));
        assert!(allowed_ip("127.0.0.1".parse().unwrap(), true));
        assert!(!allowed_ip("10.0.0.1".parse().unwrap(), true));
    }

    #[test]
    fn only_http_urls_without_credentials_are_targets() {
        assert!(target("file:///etc/passwd").is_err());
        assert!(target("http://user:pw@host/").is_err());
        assert!(target("gopher://host/").is_err());
        assert_eq!(target("https://Example.com/a").unwrap().1, "example.com");
        assert_eq!(target("http://[::1]:8080/").unwrap().2, 8080);
    }
}
