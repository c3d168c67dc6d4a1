//! The spec port: where a group attempt's spec is written for its Spark application to read
//! (`extract.py --group-spec-uri`, `livy-jobs/README.md`, "Groups"). A few hundred members outgrow
//! Linux's 128 KiB limit on one command-line argument, so the spec travels by reference: S3 in
//! AWS, files locally, memory in tests and the simulator.

use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;

/// Writing a spec failed (the attempt is not submitted; the group is placed again later).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the group spec {name}: {message}")]
pub struct SpecError {
    /// The spec's name.
    pub name: String,
    /// What failed.
    pub message: String,
}

/// Where specs are written. A name is unique per group attempt, so writing it twice (a retried
/// tick) writes the same content.
pub trait SpecStore: Send + Sync {
    /// Writes `spec` under `name`; returns the URI the application reads it from.
    fn put_spec(&self, name: &str, spec: &Value) -> impl Future<Output = Result<String, SpecError>> + Send;
}

/// Specs kept in memory (`memory://<name>`), for tests and the simulator, which read them back.
#[derive(Debug, Default)]
pub struct MemorySpecs {
    specs: Mutex<BTreeMap<String, Value>>,
}

impl MemorySpecs {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The spec a URI returned by `put_spec` names.
    pub fn read(&self, uri: &str) -> Option<Value> {
        let name = uri.strip_prefix("memory://")?;
        self.specs.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }
}

impl SpecStore for MemorySpecs {
    async fn put_spec(&self, name: &str, spec: &Value) -> Result<String, SpecError> {
        self.specs.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), spec.clone());
        Ok(format!("memory://{name}"))
    }
}

/// Specs written as files under a directory (`file://<dir>/<name>.json`): the local world, where
/// the Livy stand-in runs spark-submit on this machine. Each file is written whole, then renamed
/// into place, so an application never reads half a spec.
#[derive(Debug, Clone)]
pub struct FileSpecs {
    dir: PathBuf,
}

impl FileSpecs {
    /// Specs under `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSpecs { dir: dir.into() }
    }
}

impl SpecStore for FileSpecs {
    async fn put_spec(&self, name: &str, spec: &Value) -> Result<String, SpecError> {
        let fail = |e: std::io::Error| SpecError { name: name.to_string(), message: e.to_string() };
        let file = name.replace(['/', '\\'], "-");
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let path = self.dir.join(format!("{file}.json"));
        let partial = self.dir.join(format!(".{file}.json.partial"));
        std::fs::write(&partial, spec.to_string()).map_err(fail)?;
        std::fs::rename(&partial, &path).map_err(fail)?;
        let absolute = std::path::absolute(&path).map_err(fail)?;
        Ok(format!("file://{}", absolute.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }

    #[test]
    fn memory_specs_read_back_what_was_written() {
        let specs = MemorySpecs::new();
        let uri = block_on(specs.put_spec("g/1-a1", &json!({"members": [1, 2]}))).expect("put");
        assert_eq!(specs.read(&uri), Some(json!({"members": [1, 2]})));
        assert_eq!(specs.read("memory://other"), None);
    }

    #[test]
    fn file_specs_are_whole_files_named_by_a_file_uri() {
        let dir = std::env::temp_dir().join(format!("norris-specs-{}", std::process::id()));
        let specs = FileSpecs::new(&dir);
        let uri = block_on(specs.put_spec("small/300/60/0/7-a2", &json!({"attempt": 2}))).expect("put");
        let path = uri.strip_prefix("file://").expect("a file URI");
        let read: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("written")).expect("json");
        assert_eq!(read, json!({"attempt": 2}));
        assert!(path.ends_with("small-300-60-0-7-a2.json"), "{path}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
