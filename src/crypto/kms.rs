//! AWS KMS as the root key: KEKs are wrapped with KMS `Encrypt` and unwrapped with `Decrypt`
//! (the KEK is 32 bytes, well under KMS's 4 KiB limit), with the wrap context as the KMS
//! encryption context. Calls are signed with AWS Signature Version 4 by hand (the signer and
//! the credentials provider it shares with the S3 checkpoint sink are in [`super::aws`]), a
//! few dozen lines instead of the AWS SDK's ~200 crates. Only KEKs go to KMS: unwrapped KEKs and DEKs
//! are cached, so the per-message path makes no KMS call.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::aws::AwsClient;
pub use super::aws::{CredentialSource, Credentials};
use super::root::RootKey;

pub struct KmsClient {
    aws: AwsClient,
    endpoint: reqwest::Url,
}

/// The headers of a KMS JSON call besides those the signer adds: KMS's JSON protocol names
/// the operation in `x-amz-target`.
fn call_headers(target: &str) -> [(&'static str, &str); 2] {
    [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ]
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
        let endpoint = reqwest::Url::parse(&endpoint)?;
        // A KMS call is on the path of unwrapping a KEK: fail fast rather than stall a request.
        let aws = AwsClient::new("kms", region, source, std::time::Duration::from_secs(5))?;
        Ok(Self { aws, endpoint })
    }

    /// One KMS API call (`TrentService.<operation>`), returning the JSON reply.
    pub async fn call(&self, operation: &str, body: &Value) -> anyhow::Result<Value> {
        let target = format!("TrentService.{operation}");
        let res = self
            .aws
            .send(
                reqwest::Method::POST,
                self.endpoint.clone(),
                &call_headers(&target),
                body.to_string().into_bytes(),
            )
            .await?;
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

    fn key_id(&self) -> String {
        self.key_id.clone()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::crypto::aws::Signer;

    /// The credential scope and signed headers of a KMS JSON POST, and that the body is
    /// covered by the signature. (moto does not verify signatures; the format follows the
    /// AWS General Reference, "Signature Version 4 signing process".)
    #[test]
    fn signatures_cover_scope_headers_and_body() {
        let mut credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("secret"),
            session_token: None,
        };
        let url = reqwest::Url::parse("https://kms.us-east-1.amazonaws.com").unwrap();
        let headers = call_headers("TrentService.Encrypt");
        let sign = |credentials: &Credentials, body: &[u8]| {
            Signer {
                credentials,
                region: "us-east-1",
                service: "kms",
                amz_date: "20150830T123600Z",
            }
            .sign("POST", &url, &headers, body)
            .into_iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap()
            .1
        };
        let a = sign(&credentials, b"{}");
        assert!(a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="));
        assert_ne!(a, sign(&credentials, b"{ }"), "the body is signed");
        credentials.session_token = Some(SecretString::from("tok"));
        assert!(sign(&credentials, b"{}").contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        ));
    }
}
