//! AWS KMS as the root key: KEKs are wrapped with KMS `Encrypt` and unwrapped with `Decrypt`
//! (the KEK is 32 bytes, well under KMS's 4 KiB limit), with the wrap context as the KMS
//! encryption context. Calls are signed with AWS Signature Version 4 by hand — a few dozen
//! lines instead of the AWS SDK's ~200 crates. Only KEKs go to KMS: unwrapped KEKs and DEKs
//! are cached, so the per-message path makes no KMS call.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::root::RootKey;

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

/// Refresh container credentials this long before they expire.
const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);

pub struct KmsClient {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    region: String,
    source: CredentialSource,
    /// Container credentials and their expiry. An async mutex: a refresh is a network call.
    cached: tokio::sync::Mutex<Option<(Credentials, chrono::DateTime<chrono::Utc>)>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 `Authorization` header value for a KMS JSON call (AWS General Reference,
/// "Signature Version 4 signing process").
/// What a request's signature covers besides its body.
pub struct Signing<'a> {
    pub secret: &'a str,
    pub access_key_id: &'a str,
    pub region: &'a str,
    pub host: &'a str,
    /// `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: &'a str,
    /// `TrentService.<operation>`.
    pub target: &'a str,
    pub token: Option<&'a str>,
}

pub fn sign(req: &Signing<'_>, body: &[u8]) -> String {
    let Signing {
        secret,
        access_key_id,
        region,
        host,
        amz_date,
        target,
        token,
    } = *req;
    let date = &amz_date[..8];
    let mut headers = vec![
        ("content-type", "application/x-amz-json-1.1".to_string()),
        ("host", host.to_string()),
        ("x-amz-date", amz_date.to_string()),
    ];
    if let Some(t) = token {
        headers.push(("x-amz-security-token", t.to_string()));
    }
    headers.push(("x-amz-target", target.to_string()));
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let signed_headers = signed_headers.join(";");
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex(&Sha256::digest(body))
    );
    let scope = format!("{date}/{region}/kms/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, b"kms");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

impl KmsClient {
    /// `endpoint` defaults to `https://kms.<region>.amazonaws.com` (set it for a VPC endpoint
    /// or a local emulator).
    pub fn new(
        region: &str,
        endpoint: Option<&str>,
        source: CredentialSource,
    ) -> anyhow::Result<Self> {
        let endpoint = endpoint
            .map(str::to_string)
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        let url = reqwest::Url::parse(&endpoint)?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            endpoint,
            host,
            region: region.to_string(),
            source,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    async fn credentials(&self) -> anyhow::Result<Credentials> {
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

    /// One KMS API call (`TrentService.<operation>`), returning the JSON reply.
    pub async fn call(&self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        let target = format!("TrentService.{operation}");
        let body = body.to_string();
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let credentials = self.credentials().await?;
        let token = credentials
            .session_token
            .as_ref()
            .map(|t| t.expose_secret().to_string());
        let auth = sign(
            &Signing {
                secret: credentials.secret_access_key.expose_secret(),
                access_key_id: &credentials.access_key_id,
                region: &self.region,
                host: &self.host,
                amz_date: &amz_date,
                target: &target,
                token: token.as_deref(),
            },
            body.as_bytes(),
        );
        let mut req = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-date", &amz_date)
            .header("x-amz-target", &target)
            .header("authorization", auth);
        if let Some(t) = &token {
            req = req.header("x-amz-security-token", t);
        }
        let res = req.body(body).send().await?;
        let status = res.status();
        let reply: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // KMS errors name a type and a message; neither carries key material.
            anyhow::bail!(
                "KMS {operation} failed ({status}): {}",
                reply
                    .get("__type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
            );
        }
        Ok(reply)
    }
}

/// KMS as a [`RootKey`].
pub struct KmsRootKey {
    client: KmsClient,
    key_id: String,
}

impl KmsRootKey {
    pub fn new(client: KmsClient, key_id: &str) -> Self {
        Self {
            client,
            key_id: key_id.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl RootKey for KmsRootKey {
    async fn wrap(&self, kek: &[u8], context: &str) -> anyhow::Result<Vec<u8>> {
        let reply = self
            .client
            .call("Encrypt", &json!({"KeyId": self.key_id, "Plaintext": STANDARD.encode(kek), "EncryptionContext": {"ward": context}}))
            .await?;
        let blob = reply["CiphertextBlob"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("KMS Encrypt returned no CiphertextBlob"))?;
        Ok(STANDARD.decode(blob)?)
    }

    async fn unwrap(&self, wrapped: &[u8], context: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let reply = self
            .client
            .call("Decrypt", &json!({"KeyId": self.key_id, "CiphertextBlob": STANDARD.encode(wrapped), "EncryptionContext": {"ward": context}}))
            .await?;
        let plain = reply["Plaintext"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("KMS Decrypt returned no Plaintext"))?;
        Ok(Zeroizing::new(STANDARD.decode(plain)?))
    }

    fn describe(&self) -> String {
        format!("aws-kms:{}", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credential scope and signed headers of a KMS JSON POST, and that the body is
    /// covered by the signature. (moto does not verify signatures; the format follows the
    /// AWS General Reference, "Signature Version 4 signing process".)
    #[test]
    fn signatures_cover_scope_headers_and_body() {
        let req = Signing {
            secret: "secret",
            access_key_id: "AKIDEXAMPLE",
            region: "us-east-1",
            host: "kms.us-east-1.amazonaws.com",
            amz_date: "20150830T123600Z",
            target: "TrentService.Encrypt",
            token: None,
        };
        let a = sign(&req, b"{}");
        assert!(a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
        assert_ne!(a, sign(&req, b"{ }"), "the body is signed");
        let with_token = sign(
            &Signing {
                token: Some("tok"),
                ..req
            },
            b"{}",
        );
        assert!(with_token.contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        ));
    }
}
