//! Job definitions (operator-owned documents) and job state (control-plane-owned ledger item).
//!
//! The two live apart on purpose: an operator saving an item in the DynamoDB console rewrites the
//! whole item, which must never roll back a watermark the control plane moved in between.

use crate::document::{join, DefinitionError, FieldProblem, Reader};
use crate::ids::{check_id_text, JobId, SizeClass, Version};
use crate::time::UnixTime;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// What the operator asked norris to run, as parsed and validated from the jobs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefinition {
    /// The job's key.
    pub id: JobId,
    /// A disabled job keeps its state and watermark; nothing new is cut or placed for it.
    pub enabled: bool,
    /// The pool whose clusters run this job.
    pub size_class: SizeClass,
    /// What to hand Livy for each batch.
    pub livy: LivyBatchSpec,
    /// How failed attempts are retried before the run is marked failed.
    pub retry: RetryPolicy,
    /// Batch extraction or streaming, with the fields only that kind has.
    pub kind: JobKind,
}

/// The two kinds of job norris runs.
// Definitions are few and short-lived per tick: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// Incremental extraction of a JDBC table, one window of the watermark column at a time.
    BatchExtraction(ExtractionSpec),
    /// A long-running Structured Streaming job restarted from its checkpoint when moved.
    Streaming(StreamingSpec),
}

/// How an extraction job cuts its windows and where its data comes from and goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractionSpec {
    /// Window length; windows are aligned to multiples of it from the epoch.
    pub interval_secs: i64,
    /// How long after a window ends it becomes due (rows committed late in the source).
    pub lag_secs: i64,
    /// How far before a window's start the reader also looks for late-committed rows.
    pub lookback_secs: i64,
    /// The first window starts at this time, aligned down to the interval.
    pub start_at: UnixTime,
    /// What to do when more than one window is due.
    pub catch_up: CatchUp,
    /// At most this many of the job's windows are cut and not yet committed at once.
    pub max_windows_in_flight: u32,
    /// The JDBC source.
    pub source: JdbcSource,
    /// Lake location the windows are published under (`s3://…` or `file://…`).
    pub lake_uri: String,
    /// Declared transformations and expectations, passed to the Spark job as they are.
    pub transform: Value,
}

/// Catch-up policy when the job is behind by more than one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// One run per interval, in order (each window small; more runs).
    Sequential,
    /// Due intervals are merged into one window of up to `max_intervals` intervals (fewer, larger
    /// runs; still exactly once, since windows stay contiguous and disjoint).
    Coalesce {
        /// Upper bound on how many intervals one window may span.
        max_intervals: u32,
    },
}

/// A JDBC table to extract. Credentials are only ever a Secrets Manager ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JdbcSource {
    /// `jdbc:mysql://host:port/db` without credentials.
    pub jdbc_url: String,
    /// Secrets Manager ARN holding `username` and `password`.
    pub secret_arn: String,
    /// Table name (optionally `db.table`).
    pub table: String,
    /// Column whose value places a row in a window (e.g. `updated_at`).
    pub watermark_column: String,
    /// Columns identifying a row; the lake keeps the latest version per key.
    pub primary_key: Vec<String>,
    /// Optional soft-delete flag column: hard deletes are invisible to watermark extraction.
    pub soft_delete_column: Option<String>,
}

/// A streaming job's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingSpec {
    /// Where Structured Streaming keeps its checkpoint; a moved job restarts from it.
    pub checkpoint_uri: String,
    /// Micro-batch trigger interval.
    pub trigger_interval_ms: i64,
}

/// What norris hands Livy's `POST /batches` for this job (norris adds name, tags and args).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LivyBatchSpec {
    /// The application file (`s3://…/extract.py`, `file://…` locally).
    pub file: String,
    /// Extra arguments appended after norris's own.
    pub args: Vec<String>,
    /// Spark configuration.
    pub conf: Vec<(String, String)>,
    /// Extra Python files.
    pub py_files: Vec<String>,
    /// Extra jars (JDBC drivers).
    pub jars: Vec<String>,
    /// Driver memory, e.g. `2g`.
    pub driver_memory: Option<String>,
    /// Executor memory, e.g. `4g`.
    pub executor_memory: Option<String>,
    /// Cores per executor.
    pub executor_cores: Option<i64>,
    /// Number of executors.
    pub num_executors: Option<i64>,
}

/// Retries of failed attempts: exponential backoff up to a limit, then the run fails and alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts allowed for a run, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub backoff_base_secs: i64,
    /// Cap on the delay.
    pub backoff_max_secs: i64,
    /// An attempt whose batch still runs this long after it started is killed and retried: a
    /// batch stuck in YARN (no capacity, a hung driver) must not hold its window for hours.
    pub attempt_timeout_secs: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 3, backoff_base_secs: 60, backoff_max_secs: 900, attempt_timeout_secs: 3600 }
    }
}

const TOP_FIELDS: &[&str] = &[
    "job_id",
    "kind",
    "enabled",
    "size_class",
    "interval_secs",
    "lag_secs",
    "lookback_secs",
    "start_at",
    "catch_up",
    "max_windows_in_flight",
    "source",
    "lake_uri",
    "transform",
    "streaming",
    "livy",
    "retry",
];

impl JobDefinition {
    /// Parses and validates a job document, collecting every problem with its field path.
    pub fn from_document(doc: &Value) -> Result<JobDefinition, DefinitionError> {
        let fallback_id = doc.get("job_id").and_then(Value::as_str).unwrap_or("<no job_id>").to_string();
        let mut r = Reader::default();
        let parsed = parse_job(&mut r, doc);
        match parsed {
            Some(def) if r.is_clean() => Ok(def),
            _ => Err(DefinitionError { id: fallback_id, problems: r.into_problems() }),
        }
    }

    /// The document form (what `from_document` reads), as stored in the jobs table.
    pub fn to_document(&self) -> Value {
        let mut doc = json!({
            "job_id": self.id.as_str(),
            "enabled": self.enabled,
            "size_class": self.size_class.as_str(),
            "livy": self.livy.to_document(),
            "retry": {
                "max_attempts": self.retry.max_attempts,
                "backoff_base_secs": self.retry.backoff_base_secs,
                "backoff_max_secs": self.retry.backoff_max_secs,
                "attempt_timeout_secs": self.retry.attempt_timeout_secs,
            },
        });
        let m = doc.as_object_mut().expect("json! object");
        match &self.kind {
            JobKind::BatchExtraction(e) => {
                m.insert("kind".into(), json!("batch_extraction"));
                m.insert("interval_secs".into(), json!(e.interval_secs));
                m.insert("lag_secs".into(), json!(e.lag_secs));
                m.insert("lookback_secs".into(), json!(e.lookback_secs));
                m.insert("start_at".into(), json!(e.start_at.to_string()));
                m.insert("max_windows_in_flight".into(), json!(e.max_windows_in_flight));
                m.insert(
                    "catch_up".into(),
                    match e.catch_up {
                        CatchUp::Sequential => json!({"mode": "sequential"}),
                        CatchUp::Coalesce { max_intervals } => {
                            json!({"mode": "coalesce", "max_intervals": max_intervals})
                        }
                    },
                );
                let mut source = json!({
                    "jdbc_url": e.source.jdbc_url,
                    "secret_arn": e.source.secret_arn,
                    "table": e.source.table,
                    "watermark_column": e.source.watermark_column,
                    "primary_key": e.source.primary_key,
                });
                if let Some(col) = &e.source.soft_delete_column {
                    source["soft_delete_column"] = json!(col);
                }
                m.insert("source".into(), source);
                m.insert("lake_uri".into(), json!(e.lake_uri));
                if !e.transform.is_null() {
                    m.insert("transform".into(), e.transform.clone());
                }
            }
            JobKind::Streaming(s) => {
                m.insert("kind".into(), json!("streaming"));
                m.insert(
                    "streaming".into(),
                    json!({"checkpoint_uri": s.checkpoint_uri, "trigger_interval_ms": s.trigger_interval_ms}),
                );
            }
        }
        doc
    }

    /// The extraction settings, when this is an extraction job.
    pub fn extraction(&self) -> Option<&ExtractionSpec> {
        match &self.kind {
            JobKind::BatchExtraction(e) => Some(e),
            JobKind::Streaming(_) => None,
        }
    }
}

/// A stable fingerprint of a definition document, ignoring norris's own `norris_*` annotations,
/// so that the control plane re-validates a definition exactly when a person changed it.
pub fn definition_hash(doc: &Value) -> String {
    fn canonical(v: &Value, top: bool, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().filter(|k| !(top && k.starts_with("norris_"))).collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&m[k], false, out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    canonical(item, false, out);
                    out.push(',');
                }
                out.push(']');
            }
            Value::Number(n) => match n.as_f64() {
                // 300 and 300.0 are the same number to a person (DynamoDB stores both as "300").
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => out.push_str(&(f as i64).to_string()),
                _ => out.push_str(&n.to_string()),
            },
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(doc, true, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn parse_job(r: &mut Reader, doc: &Value) -> Option<JobDefinition> {
    let obj = r.object(doc, "")?;
    r.unknown_keys(obj, "", TOP_FIELDS);
    let id = r.required(obj, "", "job_id").and_then(|v| r.string(v, "job_id"));
    if let Some(id) = &id {
        if let Err(reason) = check_id_text(id) {
            r.problem("job_id", reason);
        }
    }
    let enabled = match r.optional(obj, "enabled") {
        Some(v) => r.boolean(v, "enabled"),
        None => Some(true),
    };
    let size_class = r.required(obj, "", "size_class").and_then(|v| r.string(v, "size_class"));
    if let Some(sc) = &size_class {
        if let Err(reason) = check_id_text(sc) {
            r.problem("size_class", reason);
        }
    }
    let livy = r.required(obj, "", "livy").and_then(|v| parse_livy(r, v, "livy"));
    let retry = match r.optional(obj, "retry") {
        Some(v) => parse_retry(r, v, "retry"),
        None => Some(RetryPolicy::default()),
    };
    let kind_text = r.required(obj, "", "kind").and_then(|v| r.string(v, "kind"));
    let kind = match kind_text.as_deref() {
        Some("batch_extraction") => {
            for key in ["streaming"] {
                if obj.contains_key(key) {
                    r.problem(key, "only streaming jobs have this field");
                }
            }
            parse_extraction(r, obj).map(JobKind::BatchExtraction)
        }
        Some("streaming") => {
            for key in ["source", "interval_secs", "lake_uri"] {
                if obj.contains_key(key) {
                    r.problem(key, "only batch_extraction jobs have this field");
                }
            }
            r.required(obj, "", "streaming").and_then(|v| parse_streaming(r, v, "streaming")).map(JobKind::Streaming)
        }
        Some(other) => {
            r.problem("kind", format!("must be \"batch_extraction\" or \"streaming\", is {other:?}"));
            None
        }
        None => None,
    };
    Some(JobDefinition {
        id: JobId::new(id?),
        enabled: enabled?,
        size_class: SizeClass::new(size_class?),
        livy: livy?,
        retry: retry?,
        kind: kind?,
    })
}

fn parse_extraction(r: &mut Reader, obj: &Map<String, Value>) -> Option<ExtractionSpec> {
    let interval_secs =
        r.required(obj, "", "interval_secs").and_then(|v| r.integer(v, "interval_secs", 60, 7 * 86_400));
    if let Some(i) = interval_secs {
        if i % 60 != 0 {
            r.problem("interval_secs", format!("must be a whole number of minutes (a multiple of 60), is {i}"));
        }
    }
    let lag_secs = match r.optional(obj, "lag_secs") {
        Some(v) => r.integer(v, "lag_secs", 0, 86_400),
        None => Some(60),
    };
    let lookback_secs = match r.optional(obj, "lookback_secs") {
        Some(v) => r.integer(v, "lookback_secs", 0, 7 * 86_400),
        None => Some(0),
    };
    let start_at = r.required(obj, "", "start_at").and_then(|v| {
        let text = r.string(v, "start_at")?;
        let t = UnixTime::parse_rfc3339_utc(&text);
        if t.is_none() {
            r.problem("start_at", format!("must be a UTC time like 2026-11-22T00:00:00Z, is {text:?}"));
        }
        t
    });
    let catch_up = match r.optional(obj, "catch_up") {
        Some(v) => parse_catch_up(r, v, "catch_up"),
        None => Some(CatchUp::Sequential),
    };
    let max_windows_in_flight = match r.optional(obj, "max_windows_in_flight") {
        Some(v) => r.integer(v, "max_windows_in_flight", 1, 100).map(|n| n as u32),
        None => Some(4),
    };
    let source = r.required(obj, "", "source").and_then(|v| parse_source(r, v, "source"));
    let lake_uri = r.required(obj, "", "lake_uri").and_then(|v| r.string(v, "lake_uri"));
    if let Some(uri) = &lake_uri {
        if !["s3://", "s3a://", "file://"].iter().any(|p| uri.starts_with(p)) {
            r.problem("lake_uri", format!("must start with s3://, s3a:// or file://, is {uri:?}"));
        }
    }
    let transform = match r.optional(obj, "transform") {
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            r.problem("transform", "must be a map (transformations and expectations)");
            Value::Null
        }
        None => Value::Null,
    };
    Some(ExtractionSpec {
        interval_secs: interval_secs?,
        lag_secs: lag_secs?,
        lookback_secs: lookback_secs?,
        start_at: start_at?,
        catch_up: catch_up?,
        max_windows_in_flight: max_windows_in_flight?,
        source: source?,
        lake_uri: lake_uri?,
        transform,
    })
}

fn parse_catch_up(r: &mut Reader, v: &Value, path: &str) -> Option<CatchUp> {
    let obj = r.object(v, path)?;
    r.unknown_keys(obj, path, &["mode", "max_intervals"]);
    let mode = r.required(obj, path, "mode").and_then(|v| r.string(v, &join(path, "mode")))?;
    match mode.as_str() {
        "sequential" => Some(CatchUp::Sequential),
        "coalesce" => {
            let max_intervals = match r.optional(obj, "max_intervals") {
                Some(v) => r.integer(v, &join(path, "max_intervals"), 1, 288)? as u32,
                None => 12,
            };
            Some(CatchUp::Coalesce { max_intervals })
        }
        other => {
            r.problem(join(path, "mode"), format!("must be \"sequential\" or \"coalesce\", is {other:?}"));
            None
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
}

fn parse_source(r: &mut Reader, v: &Value, path: &str) -> Option<JdbcSource> {
    let obj = r.object(v, path)?;
    r.unknown_keys(
        obj,
        path,
        &["jdbc_url", "secret_arn", "table", "watermark_column", "primary_key", "soft_delete_column"],
    );
    let url_path = join(path, "jdbc_url");
    let jdbc_url = r.required(obj, path, "jdbc_url").and_then(|v| r.string(v, &url_path));
    if let Some(url) = &jdbc_url {
        if !(url.starts_with("jdbc:mysql://") || url.starts_with("jdbc:mariadb://")) {
            r.problem(&url_path, "must start with jdbc:mysql:// (MySQL and MariaDB sources)");
        }
        let lower = url.to_ascii_lowercase();
        let after_scheme = lower.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if lower.contains("password")
            || lower.contains("user=")
            || after_scheme.split('/').next().unwrap_or("").contains('@')
        {
            r.problem(&url_path, "must not carry credentials: put them in the secret named by secret_arn");
        }
    }
    let arn_path = join(path, "secret_arn");
    let secret_arn = r.required(obj, path, "secret_arn").and_then(|v| r.string(v, &arn_path));
    if let Some(arn) = &secret_arn {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        if parts.len() != 7 || parts[0] != "arn" || parts[2] != "secretsmanager" || parts[5] != "secret" {
            r.problem(&arn_path, "must be a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)");
        }
    }
    let ident = |r: &mut Reader, key: &str, required: bool| -> Option<Option<String>> {
        let p = join(path, key);
        let v = if required { r.required(obj, path, key) } else { r.optional(obj, key) };
        let Some(v) = v else {
            return if required { None } else { Some(None) };
        };
        let s = r.string(v, &p)?;
        if !is_identifier(&s) {
            r.problem(&p, format!("must be a plain SQL identifier (letters, digits, _, ., $), is {s:?}"));
            return None;
        }
        Some(Some(s))
    };
    let table = ident(r, "table", true);
    let watermark_column = ident(r, "watermark_column", true);
    let soft_delete_column = ident(r, "soft_delete_column", false);
    let pk_path = join(path, "primary_key");
    let primary_key = r.required(obj, path, "primary_key").and_then(|v| r.string_list(v, &pk_path));
    if let Some(pk) = &primary_key {
        if pk.is_empty() {
            r.problem(&pk_path, "must name at least one column");
        }
        for (i, col) in pk.iter().enumerate() {
            if !is_identifier(col) {
                r.problem(format!("{pk_path}[{i}]"), format!("must be a plain SQL identifier, is {col:?}"));
            }
        }
    }
    Some(JdbcSource {
        jdbc_url: jdbc_url?,
        secret_arn: secret_arn?,
        table: table??,
        watermark_column: watermark_column??,
        primary_key: primary_key?,
        soft_delete_column: soft_delete_column?,
    })
}

fn parse_streaming(r: &mut Reader, v: &Value, path: &str) -> Option<StreamingSpec> {
    let obj = r.object(v, path)?;
    r.unknown_keys(obj, path, &["checkpoint_uri", "trigger_interval_ms"]);
    let checkpoint_uri =
        r.required(obj, path, "checkpoint_uri").and_then(|v| r.string(v, &join(path, "checkpoint_uri")));
    let trigger_interval_ms = match r.optional(obj, "trigger_interval_ms") {
        Some(v) => r.integer(v, &join(path, "trigger_interval_ms"), 1, 30_000),
        None => Some(2_000),
    };
    Some(StreamingSpec { checkpoint_uri: checkpoint_uri?, trigger_interval_ms: trigger_interval_ms? })
}

fn is_memory_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['k', 'm', 'g', 't']);
    !digits.is_empty() && digits.len() + 1 >= s.len() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_livy(r: &mut Reader, v: &Value, path: &str) -> Option<LivyBatchSpec> {
    let obj = r.object(v, path)?;
    r.unknown_keys(
        obj,
        path,
        &[
            "file",
            "args",
            "conf",
            "py_files",
            "jars",
            "driver_memory",
            "executor_memory",
            "executor_cores",
            "num_executors",
        ],
    );
    let file_path = join(path, "file");
    let file = r.required(obj, path, "file").and_then(|v| r.string(v, &file_path));
    if let Some(f) = &file {
        if !["s3://", "s3a://", "hdfs://", "file://", "local:"].iter().any(|p| f.starts_with(p)) {
            r.problem(&file_path, "must be a URI Livy can fetch: s3://, hdfs://, file:// or local:");
        }
    }
    let list = |r: &mut Reader, key: &str| match r.optional(obj, key) {
        Some(v) => r.string_list(v, &join(path, key)),
        None => Some(Vec::new()),
    };
    let args = list(r, "args");
    let py_files = list(r, "py_files");
    let jars = list(r, "jars");
    let conf = match r.optional(obj, "conf") {
        Some(v) => r.string_map(v, &join(path, "conf")),
        None => Some(Vec::new()),
    };
    if let Some(conf) = &conf {
        for (key, _) in conf {
            let k = key.to_ascii_lowercase();
            if k.contains("password") || k.contains("secret") || k.contains("credential") {
                r.problem(join(&join(path, "conf"), key), "secrets must not be passed in conf; reference them by ARN");
            }
        }
    }
    let memory = |r: &mut Reader, key: &str| -> Option<Option<String>> {
        let Some(v) = r.optional(obj, key) else {
            return Some(None);
        };
        let p = join(path, key);
        let s = r.string(v, &p)?;
        if !is_memory_size(&s) {
            r.problem(&p, format!("must be a size like 512m or 4g, is {s:?}"));
            return None;
        }
        Some(Some(s))
    };
    let driver_memory = memory(r, "driver_memory");
    let executor_memory = memory(r, "executor_memory");
    let count = |r: &mut Reader, key: &str, max: i64| -> Option<Option<i64>> {
        match r.optional(obj, key) {
            Some(v) => r.integer(v, &join(path, key), 1, max).map(Some),
            None => Some(None),
        }
    };
    let executor_cores = count(r, "executor_cores", 64);
    let num_executors = count(r, "num_executors", 1000);
    Some(LivyBatchSpec {
        file: file?,
        args: args?,
        conf: conf?,
        py_files: py_files?,
        jars: jars?,
        driver_memory: driver_memory?,
        executor_memory: executor_memory?,
        executor_cores: executor_cores?,
        num_executors: num_executors?,
    })
}

impl LivyBatchSpec {
    fn to_document(&self) -> Value {
        let mut m = Map::new();
        m.insert("file".into(), json!(self.file));
        if !self.args.is_empty() {
            m.insert("args".into(), json!(self.args));
        }
        if !self.conf.is_empty() {
            m.insert("conf".into(), Value::Object(self.conf.iter().map(|(k, v)| (k.clone(), json!(v))).collect()));
        }
        if !self.py_files.is_empty() {
            m.insert("py_files".into(), json!(self.py_files));
        }
        if !self.jars.is_empty() {
            m.insert("jars".into(), json!(self.jars));
        }
        for (key, val) in [("driver_memory", &self.driver_memory), ("executor_memory", &self.executor_memory)] {
            if let Some(v) = val {
                m.insert(key.into(), json!(v));
            }
        }
        for (key, val) in [("executor_cores", self.executor_cores), ("num_executors", self.num_executors)] {
            if let Some(v) = val {
                m.insert(key.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

fn parse_retry(r: &mut Reader, v: &Value, path: &str) -> Option<RetryPolicy> {
    let obj = r.object(v, path)?;
    r.unknown_keys(obj, path, &["max_attempts", "backoff_base_secs", "backoff_max_secs", "attempt_timeout_secs"]);
    let d = RetryPolicy::default();
    let num = |r: &mut Reader, key: &str, min: i64, max: i64, default: i64| match r.optional(obj, key) {
        Some(v) => r.integer(v, &join(path, key), min, max),
        None => Some(default),
    };
    let max_attempts = num(r, "max_attempts", 1, 20, i64::from(d.max_attempts));
    let base = num(r, "backoff_base_secs", 1, 86_400, d.backoff_base_secs);
    let max = num(r, "backoff_max_secs", 1, 7 * 86_400, d.backoff_max_secs);
    let timeout = num(r, "attempt_timeout_secs", 60, 7 * 86_400, d.attempt_timeout_secs);
    if let (Some(b), Some(m)) = (base, max) {
        if m < b {
            r.problem(join(path, "backoff_max_secs"), format!("must be at least backoff_base_secs ({b}), is {m}"));
        }
    }
    Some(RetryPolicy {
        max_attempts: max_attempts? as u32,
        backoff_base_secs: base?,
        backoff_max_secs: max?,
        attempt_timeout_secs: timeout?,
    })
}

/// Whether the control plane accepted the definition it last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// The definition parsed and validated.
    Valid,
    /// The definition was rejected; the job is skipped until a person fixes it.
    Invalid {
        /// Every problem found.
        problems: Vec<FieldProblem>,
    },
    /// A Spark run found a breaking change (dropped column, changed type); a person must decide.
    Quarantined {
        /// Why, naming the column and the types.
        reason: String,
    },
}

/// The control plane's own record of a job: what it last validated and how far it has committed.
/// Lives in the ledger table, apart from the operator-edited definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// The job.
    pub job_id: JobId,
    /// Hash of the definition document last validated (see [`definition_hash`]).
    pub definition_hash: String,
    /// Verdict on that definition.
    pub validity: Validity,
    /// Every window ending at or before this is committed; only ever moves forward, and only over
    /// contiguous committed windows.
    pub watermark: UnixTime,
    /// Start of the next window to cut (windows before it have runs).
    pub next_window_lo: UnixTime,
    /// When the scheduler should look at this job next; `None` keeps it out of the due index
    /// (disabled or invalid jobs).
    pub due_at: Option<UnixTime>,
    /// The source schema last accepted (JSON `[{name, type, nullable}]`), handed to each attempt
    /// to compare against; set at the first publish and on each additive evolution.
    pub accepted_schema: Option<String>,
    /// Optimistic-concurrency version.
    pub version: Version,
}

impl JobState {
    /// `next_window_lo` of a job that was never valid: nothing cut yet, start from `start_at`
    /// once the definition is fixed.
    pub const NOT_STARTED: UnixTime = UnixTime(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_doc() -> Value {
        json!({
            "job_id": "shop.orders",
            "kind": "batch_extraction",
            "enabled": true,
            "size_class": "small",
            "interval_secs": 300,
            "lag_secs": 60,
            "lookback_secs": 120,
            "start_at": "2026-11-22T00:00:00Z",
            "source": {
                "jdbc_url": "jdbc:mysql://127.0.0.1:3306/shop",
                "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:norris/shop-AbCdEf",
                "table": "orders",
                "watermark_column": "updated_at",
                "primary_key": ["id"]
            },
            "lake_uri": "s3://lake/shop/orders",
            "livy": {"file": "s3://code/extract.py", "conf": {"spark.sql.shuffle.partitions": "8"}, "executor_memory": "4g"},
            "retry": {"max_attempts": 4, "attempt_timeout_secs": 1800}
        })
    }

    #[test]
    fn a_valid_document_parses_and_round_trips() {
        let def = JobDefinition::from_document(&valid_doc()).expect("valid");
        assert_eq!(def.id.as_str(), "shop.orders");
        assert_eq!(def.retry.max_attempts, 4);
        assert_eq!(def.retry.attempt_timeout_secs, 1800);
        let again = JobDefinition::from_document(&def.to_document()).expect("round trip");
        assert_eq!(def, again);
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let mut doc = valid_doc();
        doc["interval_secs"] = json!("300");
        doc["source"]["jdbc_url"] = json!("jdbc:mysql://admin:hunter2@db:3306/shop");
        doc["source"]["primary_key"] = json!([]);
        doc["livy"]["conf"]["spark.jdbc.password"] = json!("x");
        doc["retyr"] = json!({});
        doc["retry"]["attempt_timeout_secs"] = json!(10);
        let err = JobDefinition::from_document(&doc).expect_err("invalid");
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(err.id, "shop.orders");
        for expected in [
            "interval_secs",
            "source.jdbc_url",
            "source.primary_key",
            "livy.conf.spark.jdbc.password",
            "retyr",
            "retry.attempt_timeout_secs",
        ] {
            assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
        }
        assert!(err.to_string().contains("interval_secs: must be a number, is a string"), "{err}");
    }

    #[test]
    fn missing_required_fields_are_reported_not_defaulted() {
        let err =
            JobDefinition::from_document(&json!({"job_id": "x", "kind": "batch_extraction"})).expect_err("invalid");
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["size_class", "livy", "interval_secs", "start_at", "source", "lake_uri"]);
    }

    #[test]
    fn hash_ignores_norris_annotations_and_number_spelling() {
        let doc = valid_doc();
        let mut annotated = doc.clone();
        annotated["norris_status"] = json!("valid");
        annotated["interval_secs"] = json!(300.0);
        assert_eq!(definition_hash(&doc), definition_hash(&annotated));
        let mut changed = doc.clone();
        changed["lag_secs"] = json!(61);
        assert_ne!(definition_hash(&doc), definition_hash(&changed));
    }
}
