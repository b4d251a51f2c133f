//! A `moto_server` (PyPI `moto[server]`) of the test's own on a free loopback port: the AWS
//! emulator behind the KMS and S3 checkpoint tests. moto does not verify signatures, so
//! these tests check behaviour; the signer is checked against AWS's vectors in its unit tests.

use std::time::Duration;

use secrecy::SecretString;
use ward::crypto::aws::Credentials;

pub struct Moto {
    pub url: String,
    child: std::process::Child,
}

impl Moto {
    /// Its path comes from `WARD_TEST_MOTO_SERVER` (set by `scripts/test.sh`), else the venv
    /// the script creates. Missing moto fails the test.
    pub async fn start() -> Self {
        let bin = std::env::var("WARD_TEST_MOTO_SERVER").unwrap_or_else(|_| {
            format!(
                "{}/.cache/ward-tools/moto/bin/moto_server",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("moto_server must be installed at {bin} (scripts/test.sh does it): {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(tokio::time::Instant::now() < deadline, "moto_server starts");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { url, child }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Any static keys do for moto.
pub fn credentials() -> Credentials {
    Credentials {
        access_key_id: "testing".into(),
        secret_access_key: SecretString::from("testing"),
        session_token: None,
    }
}
