//! AWS request signing and credentials, shared by the KMS root key ([`super::kms`]) and the
//! S3 checkpoint sink ([`crate::audit::publish`]). Signature Version 4 is written by hand —
//! one small signer for every service instead of the AWS SDK's ~200 crates
//! (audit-and-crypto.md §3.7) — and credentials come from one provider that caches the ECS
//! task role's temporary keys, so a request costs no extra round trip.
//!
//! Secrets never leave this module in text form except as the signature itself: no `Debug`,
//! and errors name the endpoint's status, never a key or token.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Credentials for signing (configured from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`). Never `Debug`.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// Where signing credentials come from.
#[derive(Clone)]
pub enum CredentialSource {
    /// Fixed keys (`AWS_ACCESS_KEY_ID`, …).
    Static(Credentials),
    /// The ECS container credentials endpoint: the task role's temporary credentials,
    /// fetched from `url` (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, or
    /// `http://169.254.170.2` + `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) with the optional
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`, and refreshed before they expire.
    Container {
        url: String,
        token: Option<SecretString>,
    },
}

/// Refresh container credentials this long before they expire, so a request signed just
/// before expiry still arrives in time.
const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);

/// Hands out credentials from a [`CredentialSource`], caching temporary ones until shortly
/// before they expire.
pub struct CredentialsProvider {
    source: CredentialSource,
    http: reqwest::Client,
    /// Container credentials and their expiry. An async mutex: a refresh is a network call,
    /// and concurrent callers should wait for it rather than all fetch at once.
    cached: tokio::sync::Mutex<Option<(Credentials, chrono::DateTime<chrono::Utc>)>>,
}

impl CredentialsProvider {
    pub fn new(source: CredentialSource, http: reqwest::Client) -> Self {
        Self {
            source,
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The current credentials (fetched from the container endpoint when the cache is cold
    /// or near expiry).
    pub async fn get(&self) -> anyhow::Result<Credentials> {
        let (url, token) = match &self.source {
            CredentialSource::Static(c) => return Ok(c.clone()),
            CredentialSource::Container { url, token } => (url, token),
        };
        let mut cached = self.cached.lock().await;
        if let Some((c, expires)) = cached.as_ref()
            && *expires - REFRESH_BEFORE > chrono::Utc::now()
        {
            return Ok(c.clone());
        }
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.header("authorization", t.expose_secret());
        }
        let res = req.send().await?;
        anyhow::ensure!(
            res.status().is_success(),
            "the container credentials endpoint answered {}",
            res.status()
        );
        let v: Value = res.json().await?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let creds = Credentials {
            access_key_id: field("AccessKeyId").ok_or_else(|| {
                anyhow::anyhow!("no AccessKeyId from the container credentials endpoint")
            })?,
            secret_access_key: SecretString::from(
                field("SecretAccessKey").ok_or_else(|| anyhow::anyhow!("no SecretAccessKey"))?,
            ),
            session_token: field("Token").map(SecretString::from),
        };
        let expires = field("Expiration")
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e).ok())
            .map(|e| e.with_timezone(&chrono::Utc))
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::minutes(10));
        *cached = Some((creds.clone(), expires));
        Ok(creds)
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// SigV4's `UriEncode`: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex);
/// `/` kept when `keep_slash` (an S3 object key's path). Callers build URL paths with it, so
/// the path sent is the canonical URI that is signed.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The host header value for `url`: the port only when it is not the scheme's default,
/// exactly as the HTTP client sends it (the signature covers it).
pub fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// What one signature is bound to besides the request: who signs, and the credential scope.
pub struct Signer<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    /// The signing name: `kms`, `s3`, …
    pub service: &'a str,
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: &'a str,
}

impl Signer<'_> {
    /// SigV4-signs a request (AWS IAM User Guide, "Create a signed AWS API request"). `path`
    /// is used as the canonical URI as it is, so it must already be encoded the way it is
    /// sent (S3: each key segment once, with [`uri_encode`]; `/` for KMS). `headers` are the
    /// request's own headers (lower-case names), all of which are signed. Returns the
    /// headers to add to the request — `x-amz-date`, `x-amz-security-token` with temporary
    /// credentials, `x-amz-content-sha256` for S3 (the one service that requires the payload
    /// hash as a header), and `authorization` — `host` is signed but left to the client.
    pub fn sign(
        &self,
        method: &str,
        url: &reqwest::Url,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let payload_hash = hex::encode(Sha256::digest(body));
        let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", self.amz_date.into())];
        if let Some(t) = &self.credentials.session_token {
            added.push(("x-amz-security-token", t.expose_secret().to_string()));
        }
        if self.service == "s3" {
            added.push(("x-amz-content-sha256", payload_hash.clone()));
        }
        let host = host_header(url);
        let mut signed: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .chain(added.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .chain([("host".to_string(), host)])
            .collect();
        signed.sort();
        let canonical_headers: String = signed
            .iter()
            .map(|(k, v)| {
                // Trimmed, inner runs of spaces collapsed.
                let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
                format!("{k}:{v}\n")
            })
            .collect();
        let signed_headers = signed
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let mut query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
            .collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let canonical = format!(
            "{method}\n{}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
            url.path()
        );
        let date = &self.amz_date[..8];
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            self.amz_date,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let secret = self.credentials.secret_access_key.expose_secret();
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");
        let signature = hex::encode(hmac(&k_signing, to_sign.as_bytes()));
        added.push((
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                self.credentials.access_key_id
            ),
        ));
        added
    }
}

/// An HTTP client that signs every request for one AWS service in one region.
pub struct AwsClient {
    http: reqwest::Client,
    credentials: CredentialsProvider,
    service: &'static str,
    region: String,
}

impl AwsClient {
    /// `timeout` bounds each request (and each credentials refresh).
    pub fn new(
        service: &'static str,
        region: &str,
        source: CredentialSource,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            credentials: CredentialsProvider::new(source, http.clone()),
            http,
            service,
            region: region.to_string(),
        })
    }

    /// Sends one signed request; see [`Signer::sign`] for how `url` and `headers` are
    /// covered. The caller reads the status: AWS errors are ordinary responses.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::Response> {
        let credentials = self.credentials.get().await?;
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let added = Signer {
            credentials: &credentials,
            region: &self.region,
            service: self.service,
            amz_date: &amz_date,
        }
        .sign(method.as_str(), &url, headers, &body);
        let mut req = self.http.request(method, url);
        for (k, v) in headers.iter().copied() {
            req = req.header(k, v);
        }
        for (k, v) in added {
            req = req.header(k, v);
        }
        Ok(req.body(body).send().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: &str, secret: &str) -> Credentials {
        Credentials {
            access_key_id: id.into(),
            secret_access_key: SecretString::from(secret.to_string()),
            session_token: None,
        }
    }

    fn authorization(added: &[(&str, String)]) -> String {
        added
            .iter()
            .find(|(k, _)| *k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    /// The `get-vanilla` case of the AWS SigV4 test suite.
    #[test]
    fn the_signer_matches_the_aws_test_suite() {
        let c = creds("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let signer = Signer {
            credentials: &c,
            region: "us-east-1",
            service: "service",
            amz_date: "20150830T123600Z",
        };
        let url = reqwest::Url::parse("https://example.amazonaws.com/").unwrap();
        assert_eq!(
            authorization(&signer.sign("GET", &url, &[], b"")),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// The S3 examples of "Authenticating Requests: Using the Authorization Header" (S3 API
    /// Reference, SigV4): a GET with a range, and a bucket sub-resource query.
    #[test]
    fn the_signer_matches_the_s3_documentation_examples() {
        let c = creds(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        let signer = Signer {
            credentials: &c,
            region: "us-east-1",
            service: "s3",
            amz_date: "20130524T000000Z",
        };
        let url = reqwest::Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let get = signer.sign("GET", &url, &[("range", "bytes=0-9")], b"");
        assert!(get.contains(&(
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()
        )));
        assert_eq!(
            authorization(&get),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let url = reqwest::Url::parse("https://examplebucket.s3.amazonaws.com/?lifecycle").unwrap();
        assert_eq!(
            authorization(&signer.sign("GET", &url, &[], b"")),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
