//! The Lambda binary figures: size on disk (and of the deployable zip when `make package` built
//! it), time from process spawn to the first handled event, and peak memory.
//!
//! Each binary runs as Lambda runs it, against a minimal fake of the Lambda Runtime API served
//! here (plain `std::net`, hand-written HTTP/1.1): the first `GET …/invocation/next` gets one
//! event, the `…/response` or `…/error` POST is timed, and while the process waits on its second
//! `next` its peak resident set (`VmHWM` in `/proc/<pid>/status`) is read before it is killed.
//! The binaries talk to AWS through `AWS_ENDPOINT_URL`: by default a stub served here that answers
//! as an empty world would (DynamoDB tables without items, EMR without clusters), so the scheduler's
//! first event is a whole, successful tick, and the stub counts the requests made; or an unused
//! port (`refused`); or the endpoint in the environment (`env`, e.g. the local moto server).

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::scheduler::Spread;

/// The four Lambda binaries.
pub const FUNCTIONS: [&str; 4] = ["extraction-scheduler", "cluster-health-watcher", "rotation-handler", "job-migrator"];

/// Where the binaries' AWS requests (DynamoDB, EMR) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DynamoTarget {
    /// A stub served by the benchmark that answers as empty tables (and an EMR without clusters)
    /// would.
    Stub,
    /// An unused local port: every request is refused (the SDK retries with backoff first).
    Refused,
    /// `AWS_ENDPOINT_URL` (and credentials) from this process's environment, e.g. moto.
    Env,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the release binaries are.
    pub bin_dir: PathBuf,
    /// Process starts per binary.
    pub runs: usize,
    /// The scheduler's DynamoDB.
    pub dynamodb: DynamoTarget,
    /// Give up on one start after this long.
    pub timeout: Duration,
}

/// One binary's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaResult {
    /// The function (crate and binary name).
    pub function: &'static str,
    /// The binary measured.
    pub binary: String,
    /// Its size.
    pub binary_bytes: u64,
    /// `target/lambda/<function>/bootstrap.zip`, if `make package` built it.
    pub zip_bytes: Option<u64>,
    /// The binary compressed with `gzip -9` (deflate, as in a zip): a stand-in for the zip size
    /// when the zip was not built (the zip holds a cargo-lambda build, linked differently).
    pub gzip_bytes: Option<u64>,
    /// Starts measured.
    pub runs: usize,
    /// Spawn to the first `GET /next` (initialisation), ms.
    pub init_ms: Spread,
    /// Spawn to the response or error POST of the first event, ms.
    pub first_event_ms: Spread,
    /// First `GET /next` to the response or error POST (the handler), ms.
    pub handler_ms: Spread,
    /// Peak resident set size (`VmHWM`), MiB.
    pub peak_rss_mib: Spread,
    /// `response`, `error`, `init error`, or what went wrong.
    pub outcome: String,
    /// The POST body (truncated).
    pub outcome_body: String,
    /// AWS requests the first start made (stub only): DynamoDB operations, `service:Operation`
    /// for other services.
    pub aws_requests: BTreeMap<String, u64>,
    /// The first start's log (stdout and stderr).
    pub log: String,
}

/// The benchmark's output.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaReport {
    /// How the binaries are run.
    pub setup: Vec<String>,
    /// The scheduler's DynamoDB.
    pub dynamodb: DynamoTarget,
    /// One entry per binary.
    pub results: Vec<LambdaResult>,
    /// The scheduler's requests to the stub against the translation model's count for the same
    /// (empty-world) tick.
    pub translation_check: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1, the little of it the runtime client and the AWS SDK speak.

#[derive(Debug, Default)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// Reads one request; `None` at the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let Some(line) = read_line(reader)? else { return Ok(None) };
    if line.is_empty() {
        return read_request(reader);
    }
    let mut parts = line.split_whitespace();
    let mut req = Request {
        method: parts.next().unwrap_or_default().to_string(),
        path: parts.next().unwrap_or_default().to_string(),
        ..Request::default()
    };
    loop {
        let Some(line) = read_line(reader)? else { return Ok(None) };
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            req.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if req.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if let Some(len) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        req.body = vec![0; len];
        reader.read_exact(&mut req.body)?;
    } else if req.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = read_line(reader)?.unwrap_or_default();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers, then the empty line.
                while read_line(reader)?.is_some_and(|l| !l.is_empty()) {}
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            req.body.extend_from_slice(&chunk);
            read_line(reader)?;
        }
    }
    Ok(Some(req))
}

fn write_response(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// A server on 127.0.0.1 that hands each connection to `handle` on its own thread.
struct Server {
    addr: SocketAddr,
    stopping: Arc<Mutex<bool>>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(Mutex::new(false));
        let stop = Arc::clone(&stopping);
        let handle = Arc::new(handle);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if *stop.lock().unwrap_or_else(|p| p.into_inner()) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let handle = Arc::clone(&handle);
                std::thread::spawn(move || handle(stream));
            }
        });
        Ok(Server { addr, stopping, accept: Some(accept) })
    }

    fn stop(&mut self) {
        *self.stopping.lock().unwrap_or_else(|p| p.into_inner()) = true;
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The fake Lambda Runtime API.

#[derive(Debug, Clone)]
struct Outcome {
    kind: &'static str,
    at: Instant,
    body: String,
}

#[derive(Debug, Default)]
struct RuntimeState {
    first_next: Option<Instant>,
    outcome: Option<Outcome>,
    waiting_again: bool,
    released: bool,
}

#[derive(Default)]
struct RuntimeShared {
    state: Mutex<RuntimeState>,
    changed: Condvar,
}

impl RuntimeShared {
    fn lock(&self) -> MutexGuard<'_, RuntimeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

fn serve_runtime(stream: TcpStream, shared: &RuntimeShared, function: &str, event: &[u8]) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    while let Some(req) = read_request(&mut reader)? {
        let at = Instant::now();
        let posted = |kind: &'static str| {
            let mut st = shared.lock();
            if st.outcome.is_none() {
                st.outcome = Some(Outcome { kind, at, body: String::from_utf8_lossy(&req.body).into_owned() });
            }
            shared.changed.notify_all();
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", NEXT) => {
                let first = {
                    let mut st = shared.lock();
                    if st.first_next.is_none() {
                        st.first_next = Some(at);
                        true
                    } else {
                        st.waiting_again = true;
                        shared.changed.notify_all();
                        false
                    }
                };
                if !first {
                    // Hold the second poll open (as Lambda does between events) until measured.
                    let mut st = shared.lock();
                    while !st.released {
                        st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    return Ok(());
                }
                let deadline_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() + 300_000)
                    .unwrap_or(0);
                let headers = [
                    ("Content-Type", "application/json".to_string()),
                    ("Lambda-Runtime-Aws-Request-Id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_string()),
                    ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
                    ),
                    (
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".to_string(),
                    ),
                ];
                write_response(&mut stream, "200 OK", &headers, event)?;
            }
            ("POST", p) if p.starts_with("/2018-06-01/runtime/invocation/") => {
                posted(if p.ends_with("/response") { "response" } else { "error" });
                write_response(
                    &mut stream,
                    "202 Accepted",
                    &[("Content-Type", "application/json".into())],
                    br#"{"status":"OK"}"#,
                )?;
            }
            ("POST", "/2018-06-01/runtime/init/error") => {
                posted("init error");
                write_response(
                    &mut stream,
                    "202 Accepted",
                    &[("Content-Type", "application/json".into())],
                    br#"{"status":"OK"}"#,
                )?;
            }
            _ => write_response(&mut stream, "404 Not Found", &[], b"")?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The AWS stub: every DynamoDB table exists and is empty, EMR has no clusters.

/// The body an empty world answers an `X-Amz-Target` with (`DynamoDB_20120810.Query`,
/// `ElasticMapReduce.ListClusters`, …).
fn empty_world_answer(target: &str) -> &'static str {
    match target.rsplit('.').next().unwrap_or("") {
        "Query" | "Scan" => r#"{"Count":0,"Items":[],"ScannedCount":0}"#,
        "BatchGetItem" => r#"{"Responses":{},"UnprocessedKeys":{}}"#,
        "ListClusters" => r#"{"Clusters":[]}"#,
        "ListInstances" => r#"{"Instances":[]}"#,
        "ListInstanceFleets" => r#"{"InstanceFleets":[]}"#,
        _ => "{}",
    }
}

/// How a request is counted: the DynamoDB operation (`PutItem`), or `service:Operation`.
fn request_label(target: &str) -> String {
    match target.split_once('.') {
        Some((service, op)) if service.starts_with("DynamoDB") => op.to_string(),
        Some((service, op)) => format!("{service}:{op}"),
        None => format!("(no X-Amz-Target) {target}"),
    }
}

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

fn serve_aws(stream: TcpStream, counts: &Counts) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    while let Some(req) = read_request(&mut reader)? {
        let target = req.header("x-amz-target").unwrap_or("").to_string();
        *counts.lock().unwrap_or_else(|p| p.into_inner()).entry(request_label(&target)).or_default() += 1;
        let content_type =
            if target.starts_with("DynamoDB") { "application/x-amz-json-1.0" } else { "application/x-amz-json-1.1" };
        let headers = [("Content-Type", content_type.to_string()), ("x-amzn-RequestId", "bench".into())];
        write_response(&mut stream, "200 OK", &headers, empty_world_answer(&target).as_bytes())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

fn event_for(function: &str) -> Value {
    match function {
        "extraction-scheduler" | "rotation-handler" => json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T00:05:00Z",
            "region": "us-east-1", "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/norris-{function}")],
            "detail": {}
        }),
        "cluster-health-watcher" => json!({
            "version": "0", "id": "999cccaa-eaaa-0000-1111-123456789012", "detail-type": "EMR Cluster State Change",
            "source": "aws.emr", "account": "123456789012", "time": "2026-11-22T00:05:00Z", "region": "us-east-1",
            "resources": [], "detail": {"severity": "ERROR", "stateChangeReason": "{\"code\":\"SPOT_INSTANCE_TERMINATED\"}",
                "name": "norris-small-01", "clusterId": "j-1K48XXXXXXHCB", "state": "TERMINATED_WITH_ERRORS",
                "message": "Amazon EMR Cluster j-1K48XXXXXXHCB has terminated with errors"}
        }),
        _ => json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "norris migrate",
            "source": "norris", "detail": {"cluster": "small-01"}}),
    }
}

fn lambda_env(function: &str, runtime: SocketAddr, endpoint: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("AWS_LAMBDA_RUNTIME_API", runtime.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("norris-bench-{function}")),
        // As infra/lib/norris-stack.ts declares them.
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", if function == "extraction-scheduler" { "512" } else { "256" }.into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/norris-bench-{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]bench".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("NORRIS_TABLE_PREFIX", "bench".into()),
        ("NORRIS_SPEC_URI", "s3://norris-bench-artifacts/specs/".into()),
        // What the cluster lifecycle's handlers read (ignored by binaries that do not).
        ("NORRIS_DEPLOYMENT", "bench".into()),
        ("NORRIS_EMR_SERVICE_ROLE", "norris-bench-emr-service".into()),
        ("NORRIS_EMR_INSTANCE_PROFILE", "norris-bench-emr-nodes".into()),
        ("NORRIS_EMR_SUBNET_IDS", "subnet-0bench0001".into()),
        ("NORRIS_EMR_PRIMARY_SECURITY_GROUP", "sg-0bench0001".into()),
        ("NORRIS_EMR_CORE_SECURITY_GROUP", "sg-0bench0002".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    match endpoint {
        Some(url) => {
            env.push(("AWS_ENDPOINT_URL".into(), url.into()));
            for (k, default) in [
                ("AWS_REGION", "us-east-1"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "bench"),
                ("AWS_SECRET_ACCESS_KEY", "bench"),
                ("AWS_SESSION_TOKEN", "bench"),
            ] {
                env.push((k.into(), std::env::var(k).unwrap_or_else(|_| default.into())));
            }
        }
        None => env.push(("AWS_REGION".into(), "us-east-1".into())),
    }
    env
}

/// A kB figure from `/proc/<pid>/status`.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

struct Start {
    init: Option<Duration>,
    event: Option<Duration>,
    handler: Option<Duration>,
    peak_kib: Option<u64>,
    outcome: String,
    body: String,
    aws: BTreeMap<String, u64>,
}

fn start_once(
    bin: &Path,
    function: &'static str,
    env: impl Fn(SocketAddr) -> Vec<(String, String)>,
    counts: Option<&Counts>,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<Start> {
    let shared = Arc::new(RuntimeShared::default());
    let event = serde_json::to_vec(&event_for(function))?;
    let server_shared = Arc::clone(&shared);
    let mut server = Server::start(move |stream| {
        let _ = serve_runtime(stream, &server_shared, function, &event);
    })?;
    if let Some(c) = counts {
        c.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(bin);
    command.env_clear().envs(env(server.addr)).stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    let spawned = Instant::now();
    let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let deadline = spawned + timeout;
    let mut exited = None;
    {
        let mut st = shared.lock();
        loop {
            if st.waiting_again || st.outcome.as_ref().is_some_and(|o| o.kind == "init error") {
                break;
            }
            if let Some(status) = child.try_wait()? {
                exited = Some(status);
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            st = shared.changed.wait_timeout(st, Duration::from_millis(5)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
    // Peak memory while the process is alive and idle, waiting for its next event.
    let status = if exited.is_none() { std::fs::read_to_string(format!("/proc/{pid}/status")).ok() } else { None };
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    {
        shared.lock().released = true;
        shared.changed.notify_all();
    }
    server.stop();
    let st = shared.lock();
    let outcome = st.outcome.clone();
    let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(spawned));
    Ok(Start {
        init: since(st.first_next),
        event: since(outcome.as_ref().map(|o| o.at)),
        handler: match (st.first_next, outcome.as_ref()) {
            (Some(n), Some(o)) => Some(o.at.saturating_duration_since(n)),
            _ => None,
        },
        peak_kib: status.as_deref().and_then(|s| status_kb(s, "VmHWM:")),
        outcome: match (&outcome, exited) {
            (Some(o), _) => o.kind.to_string(),
            (None, Some(code)) => format!("exited ({code}) before answering"),
            (None, None) => format!("no answer within {} s", timeout.as_secs()),
        },
        body: outcome.map(|o| o.body.chars().take(400).collect()).unwrap_or_default(),
        aws: counts.map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default(),
    })
}

fn gzip_size(path: &Path) -> Option<u64> {
    let out = Command::new("gzip").arg("-9c").arg(path).stderr(Stdio::null()).output().ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

/// Runs the benchmark.
pub fn run(options: &Options) -> anyhow::Result<LambdaReport> {
    let missing: Vec<&str> = FUNCTIONS.iter().copied().filter(|f| !options.bin_dir.join(f).is_file()).collect();
    if !missing.is_empty() {
        bail!(
            "release binaries missing in {}: {} (build them with `cargo build --release --locked -p {}`)",
            options.bin_dir.display(),
            missing.join(", "),
            FUNCTIONS.join(" -p ")
        );
    }
    let counts: Counts = Arc::default();
    let stub_counts = Arc::clone(&counts);
    let stub = match options.dynamodb {
        DynamoTarget::Stub => Some(Server::start(move |stream| {
            let _ = serve_aws(stream, &stub_counts);
        })?),
        _ => None,
    };
    let endpoint = match options.dynamodb {
        DynamoTarget::Stub => stub.as_ref().map(|s| format!("http://{}", s.addr)),
        DynamoTarget::Refused => {
            let unused = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            Some(format!("http://{unused}"))
        }
        DynamoTarget::Env => std::env::var("AWS_ENDPOINT_URL").ok(),
    };
    let logs = std::env::temp_dir().join(format!("norris-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    // target/release/<bin> -> target/lambda/<function>/bootstrap.zip
    let target = options.bin_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut results = Vec::new();
    for function in FUNCTIONS {
        let bin = options.bin_dir.join(function);
        eprintln!("  {function}: {} start(s)", options.runs);
        let mut starts = Vec::new();
        for i in 0..options.runs.max(1) {
            let log = logs.join(format!("{function}-{i}.log"));
            let endpoint = endpoint.clone();
            let env = move |addr| lambda_env(function, addr, endpoint.as_deref());
            let use_counts = (options.dynamodb == DynamoTarget::Stub).then_some(&counts);
            starts.push(start_once(&bin, function, env, use_counts, &log, options.timeout)?);
        }
        let spread = |f: &dyn Fn(&Start) -> Option<f64>| Spread::of(&starts.iter().filter_map(f).collect::<Vec<_>>());
        let first = &starts[0];
        results.push(LambdaResult {
            function,
            binary: bin.display().to_string(),
            binary_bytes: std::fs::metadata(&bin)?.len(),
            zip_bytes: std::fs::metadata(target.join("lambda").join(function).join("bootstrap.zip"))
                .ok()
                .map(|m| m.len()),
            gzip_bytes: gzip_size(&bin),
            runs: starts.len(),
            init_ms: spread(&|s| ms(s.init)),
            first_event_ms: spread(&|s| ms(s.event)),
            handler_ms: spread(&|s| ms(s.handler)),
            peak_rss_mib: spread(&|s| s.peak_kib.map(|k| k as f64 / 1024.0)),
            outcome: first.outcome.clone(),
            outcome_body: first.body.clone(),
            aws_requests: first.aws.clone(),
            log: logs.join(format!("{function}-0.log")).display().to_string(),
        });
    }
    let setup = vec![
        "each binary started as Lambda starts it (clean environment: AWS_LAMBDA_* variables, memory declared as the stack does (512/256 MB), JSON logs, region, dummy credentials, NORRIS_TABLE_PREFIX) against a fake Runtime API on 127.0.0.1".into(),
        "event: an EventBridge scheduled event (scheduler, rotation handler), an EMR cluster state change (health watcher), a norris migrate event (migrator)".into(),
        format!(
            "AWS endpoint (AWS_ENDPOINT_URL): {}",
            match options.dynamodb {
                DynamoTarget::Stub => "a stub answering as an empty world (DynamoDB tables without items, EMR without clusters): the first event is a full pass over an empty world",
                DynamoTarget::Refused => "an unused port (requests refused; the SDK retries with backoff)",
                DynamoTarget::Env => "AWS_ENDPOINT_URL from the environment",
            }
        ),
        "first event: spawn to the response/error POST; peak memory: VmHWM read while the process waits on its second /next, then it is killed".into(),
    ];
    drop(stub);
    Ok(LambdaReport { setup, dynamodb: options.dynamodb, results, translation_check: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_with_either_body_framing() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").expect("write");
            s.write_all(b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .expect("write");
        });
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream);
        let a = read_request(&mut reader).expect("read").expect("request");
        assert_eq!((a.method.as_str(), a.path.as_str(), a.body.as_slice()), ("POST", "/a", &b"hello"[..]));
        let b = read_request(&mut reader).expect("read").expect("request");
        assert_eq!((b.path.as_str(), b.body.as_slice()), ("/b", &b"abcde"[..]));
        client.join().expect("client");
        assert!(read_request(&mut reader).expect("read").is_none(), "end of connection");
    }

    #[test]
    fn peak_memory_is_read_from_proc_status() {
        let status = "Name:\tbootstrap\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(status_kb(status, "VmHWM:"), Some(9876));
        assert_eq!(status_kb(status, "VmSwap:"), None);
        assert!(empty_world_answer("DynamoDB_20120810.Query").contains("\"Items\":[]"));
        assert_eq!(empty_world_answer("ElasticMapReduce.ListClusters"), r#"{"Clusters":[]}"#);
        assert_eq!(request_label("DynamoDB_20120810.PutItem"), "PutItem");
        assert_eq!(request_label("ElasticMapReduce.ListClusters"), "ElasticMapReduce:ListClusters");
    }
}
