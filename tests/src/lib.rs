//! Harness for norris's end-to-end tests on the local world (run by `make test`, which starts
//! moto, MariaDB and PostgreSQL and sets `AWS_ENDPOINT_URL`): Livy stand-in processes, a MariaDB
//! source database, Secrets Manager secrets on moto, and a TCP proxy that can drop a response.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A short unique suffix for names (tables, databases) of one test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}{}{}", std::process::id() % 10_000, nanos % 100_000_000)
}

/// Fails with a clear message when the local world is not up.
pub fn require_local_world() -> Result<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !endpoint.starts_with("http://127.0.0.1") {
        bail!("the local world is not up: run `make test` (AWS_ENDPOINT_URL is {endpoint:?})");
    }
    Ok(endpoint)
}

/// Polls `check` every `every` until it returns `Some`, at most `limit`.
pub async fn wait_until<T, F, Fut>(what: &str, limit: Duration, every: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if started.elapsed() > limit {
            bail!("gave up waiting for {what} after {limit:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// A Livy stand-in process (one local "cluster"); killed (with its Spark applications) on drop.
pub struct LivyStandin {
    child: Child,
    /// Its base URL.
    pub endpoint: String,
    /// Its port.
    pub port: u16,
}

impl LivyStandin {
    /// Starts a stand-in on `port` (0: any free port) and waits until it listens.
    pub fn start(port: u16, retain_finished_secs: u64) -> Result<Self> {
        Self::start_with(port, retain_finished_secs, &[])
    }

    /// Starts a stand-in with extra command-line options (e.g. `--spark-submit` for the fast
    /// stand-in spark-submit of the stand-in's own tests).
    pub fn start_with(port: u16, retain_finished_secs: u64, extra: &[&str]) -> Result<Self> {
        let root = repo_root();
        let dir = root.join("target").join("e2e");
        std::fs::create_dir_all(&dir)?;
        let ready = dir.join(unique("livy-ready-"));
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/local/livy_standin/livy_standin.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--retain-finished-secs", &retain_finished_secs.to_string()])
            .arg("--ready-file")
            .arg(&ready)
            .arg("--log-dir")
            .arg(dir.join("livy-logs"))
            .args(extra)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("PYSPARK_PYTHON", root.join(".venv/bin/python"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the Livy stand-in")?;
        let started = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                if let Ok(p) = text.trim().parse::<u16>() {
                    break p;
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the Livy stand-in did not become ready within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(LivyStandin { child, endpoint: format!("http://127.0.0.1:{port}"), port })
    }

    /// Stops it as a cluster loss or restart would: SIGTERM, which kills its running batches.
    pub fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while self.child.try_wait()?.is_none() {
            if started.elapsed() > Duration::from_secs(20) {
                self.child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for LivyStandin {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Runs SQL on the local MariaDB as the `norris` user.
pub fn mariadb(database: Option<&str>, sql: &str) -> Result<String> {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-P", "3306", "-u", "norris", "-pnorris-local", "-N", "-B"]);
    if let Some(db) = database {
        cmd.arg(db);
    }
    let out = cmd.arg("-e").arg(sql).output().context("running the mariadb client")?;
    if !out.status.success() {
        bail!("mariadb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Creates a Secrets Manager secret on moto (JSON protocol; moto does not check signatures) and
/// returns its ARN.
pub async fn create_secret(endpoint: &str, name: &str, secret_json: &str) -> Result<String> {
    let body = serde_json::json!({"Name": name, "SecretString": secret_json});
    let resp = reqwest::Client::new()
        .post(endpoint)
        .header("X-Amz-Target", "secretsmanager.CreateSecret")
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("Authorization", "AWS4-HMAC-SHA256 Credential=local-world/20261122/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("CreateSecret failed: {status} {v}");
    }
    Ok(v["ARN"].as_str().context("CreateSecret answered without an ARN")?.to_string())
}

/// A TCP proxy in front of a server that can swallow the response to the next `POST /batches`:
/// the request reaches the server (the batch is created) but the client's connection is closed
/// before any answer, as when a response is lost on the network.
pub struct DroppingProxy {
    /// The proxy's base URL.
    pub endpoint: String,
    drop_next_post: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How many responses were dropped.
    pub dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DroppingProxy {
    /// Starts a proxy to `upstream_port` on a free local port.
    pub async fn start(upstream_port: u16) -> Result<Self> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let drop_next_post = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (drop_next_post.clone(), dropped.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (flag, count) = (flag.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut server_rx, mut server_tx) = server.into_split();
                    let swallow = Arc::new(AtomicBool::new(false));
                    let swallow_up = swallow.clone();
                    let upstream = tokio::spawn(async move {
                        let mut buf = vec![0_u8; 64 * 1024];
                        loop {
                            let n = match client_rx.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if buf[..n].starts_with(b"POST /batches") && flag.swap(false, Ordering::SeqCst) {
                                swallow_up.store(true, Ordering::SeqCst);
                            }
                            if server_tx.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                    let mut buf = vec![0_u8; 64 * 1024];
                    loop {
                        let n = match server_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if swallow.load(Ordering::SeqCst) {
                            // The server acted on the request; the client never hears of it.
                            count.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        if client_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    upstream.abort();
                });
            }
        });
        Ok(DroppingProxy { endpoint: format!("http://127.0.0.1:{port}"), drop_next_post, dropped })
    }

    /// Swallows the response to the next `POST /batches`.
    pub fn drop_next_post(&self) {
        self.drop_next_post.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the cluster supervisor says of one local cluster's Livy stand-in (its state file).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalStandin {
    /// Livy's base URL (also the cluster's `norris:livy-endpoint` tag).
    pub endpoint: String,
    /// The stand-in's process.
    pub pid: u32,
    /// `running`, `stopping` or `stopped`.
    pub state: String,
}

/// The local clusters of one deployment (`tests/local/cluster_supervisor`): each live moto EMR
/// cluster tagged with the deployment gets a Livy stand-in of its own, named by its
/// `norris:livy-endpoint` tag; a terminated cluster's stand-in is stopped with its Spark
/// applications. Stopped (with everything it started) on drop.
pub struct ClusterSupervisor {
    child: Child,
    state_file: PathBuf,
}

impl ClusterSupervisor {
    /// Starts a supervisor for `deployment` on the local world's moto (`AWS_ENDPOINT_URL`) and
    /// waits until its first look at EMR succeeded.
    pub fn start(deployment: &str) -> Result<Self> {
        let root = repo_root();
        let dir = root.join("target").join("e2e").join("clusters").join(deployment);
        std::fs::create_dir_all(&dir)?;
        let ready = dir.join("supervisor.ready");
        let state_file = dir.join("supervisor.json");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::File::create(dir.join("supervisor.log"))?;
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/local/cluster_supervisor/cluster_supervisor.py"))
            .args(["--deployment", deployment, "--poll-secs", "0.2"])
            .arg("--log-dir")
            .arg(&dir)
            .arg("--state-file")
            .arg(&state_file)
            .arg("--ready-file")
            .arg(&ready)
            .env("PYSPARK_PYTHON", root.join(".venv/bin/python"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the cluster supervisor")?;
        let mut supervisor = ClusterSupervisor { child, state_file };
        let started = Instant::now();
        while !ready.exists() {
            if let Some(status) = supervisor.child.try_wait()? {
                bail!("the cluster supervisor exited ({status}); see {}", dir.join("supervisor.log").display());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the cluster supervisor did not look at EMR within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(supervisor)
    }

    /// The stand-in of an EMR cluster, if the supervisor gave it one.
    pub fn standin(&self, emr_cluster_id: &str) -> Result<Option<LocalStandin>> {
        let Ok(text) = std::fs::read_to_string(&self.state_file) else { return Ok(None) };
        let state: serde_json::Value = serde_json::from_str(&text).context("the supervisor's state file")?;
        let Some(c) = state["clusters"].get(emr_cluster_id) else { return Ok(None) };
        Ok(Some(LocalStandin {
            endpoint: c["endpoint"].as_str().context("endpoint")?.to_string(),
            pid: c["pid"].as_u64().context("pid")? as u32,
            state: c["state"].as_str().context("state")?.to_string(),
        }))
    }

    fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while self.child.try_wait()?.is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                self.child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for ClusterSupervisor {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Whether a process is alive (a zombie counts as dead).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3)).is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// The live descendants of a process, from /proc parent links.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(state), Some(ppid)) = (fields.first(), fields.get(1).and_then(|p| p.parse::<u32>().ok())) {
            if *state != "Z" && *state != "X" {
                parent.insert(pid, ppid);
            }
        }
    }
    parent
        .keys()
        .copied()
        .filter(|pid| {
            let mut at = parent.get(pid).copied();
            while let Some(p) = at {
                if p == root {
                    return true;
                }
                at = parent.get(&p).copied();
            }
            false
        })
        .collect()
}
