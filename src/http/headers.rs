//! Security headers on every response (OWASP REST Security Cheat Sheet, "Security headers"):
//! replies carry tokens, profiles and messages (PHI), so no cache may keep them
//! (`Cache-Control: no-store`), no browser may sniff them into something executable
//! (`nosniff`), and no page may frame them or run anything from them (a `default-src 'none'`
//! CSP: Ward renders no HTML today, and an error page that echoes input must stay inert).
//! HSTS (RFC 6797) is sent when browsers reach Ward over HTTPS: Ward terminates TLS itself
//! or `WARD_PUBLIC_URL` is `https://` (a load balancer terminates it); over plain HTTP a
//! browser ignores it (§8.1), so it is not sent there.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;

/// No fetches, no framing, no base or form targets.
const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// One year, subdomains included (the usual preload-eligible value).
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The layer of the API router: the headers, plus HSTS when served over HTTPS.
pub async fn api(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let https = state.config.tls.is_some() || state.config.public_url.starts_with("https://");
    let mut res = next.run(req).await;
    set(res.headers_mut(), https);
    res
}

/// The layer of a plain-HTTP internal listener (metrics): the headers, no HSTS.
pub async fn internal(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    set(res.headers_mut(), false);
    res
}

/// Sets each header unless the handler chose its own value.
fn set(headers: &mut HeaderMap, https: bool) {
    let mut put = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    put(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    put(header::REFERRER_POLICY, "no-referrer");
    put(header::CACHE_CONTROL, "no-store");
    put(header::CONTENT_SECURITY_POLICY, CSP);
    if https {
        put(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
}
