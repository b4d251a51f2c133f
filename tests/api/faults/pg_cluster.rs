//! A PostgreSQL cluster of the test's own (never the shared one on 5432), which the test may
//! restart or stop: initdb into a temporary directory, trust auth, listening on a free
//! loopback port with its socket in that directory. PostgreSQL refuses to run as root, so
//! as root the binaries run as the `postgres` OS user (the directory is handed to it).

use std::path::{Path, PathBuf};
use std::process::Output;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgCluster {
    pub port: u16,
    dir: PathBuf,
    /// `Some(user)` when the binaries run as another OS user (the test runs as root).
    run_as: Option<&'static str>,
}

impl PgCluster {
    /// Initialises and starts a fresh cluster; waits until it accepts connections.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("ward_pg_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let run_as = is_root().then_some("postgres");
        if let Some(user) = run_as {
            hand_over(&dir, user);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self { port, dir, run_as };
        let data = cluster.data();
        cluster
            .run(
                "initdb",
                &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
            )
            .await;
        cluster.start_server().await;
        cluster
    }

    /// The URL of database `name` (Ward creates it on first start).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// `pg_ctl restart -m fast`: in-flight sessions are terminated, the server comes back.
    pub async fn restart(&self) {
        let (data, log) = (self.data(), self.log());
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-m", "fast", "-w", "restart"],
        )
        .await;
    }

    /// Stops the server (fast shutdown): connections are refused until [`Self::start_server`].
    pub async fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
            .await;
    }

    /// Starts the server and waits (`-w`) until it accepts connections.
    pub async fn start_server(&self) {
        let (data, log) = (self.data(), self.log());
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        )
        .await;
    }

    /// The postmaster's process id (the first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> u32 {
        let text = std::fs::read_to_string(Path::new(&self.data()).join("postmaster.pid"))
            .expect("the server runs");
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Where the server writes its output (`-l`; without it `pg_ctl` would hand the server
    /// its own stdout and never finish).
    fn log(&self) -> String {
        self.dir.join("server.log").display().to_string()
    }

    async fn run(&self, bin: &str, args: &[&str]) {
        let mut cmd = tokio::process::Command::from(self.command(bin));
        let out = cmd.args(args).output().await.expect("the binary runs");
        assert!(
            out.status.success(),
            "{bin} {args:?} failed: {}",
            text(&out)
        );
    }

    /// A PostgreSQL binary, as the user that owns the cluster.
    fn command(&self, bin: &str) -> std::process::Command {
        let program = format!("{BIN}/{bin}");
        match self.run_as {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", user, "--", &program]);
                c
            }
            None => std::process::Command::new(program),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Gives `dir` to `user` (its uid and gid, read with `id`).
fn hand_over(dir: &Path, user: &str) {
    let id = |flag: &str| -> u32 {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g"))).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
