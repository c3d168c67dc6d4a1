//! Batches as the control plane sees them, independent of Livy's wire format: what to submit and
//! what was observed. The Livy adapter translates; the engine decides on these.

/// What to run: Livy's `POST /batches` body in norris's words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchSubmission {
    /// Unique per run attempt (`norris-<job>-<lo>-a<attempt>`): a submission whose response was
    /// lost is found again by this name, and a second submission of it is refused by the server.
    pub name: String,
    /// The application file.
    pub file: String,
    /// Application arguments.
    pub args: Vec<String>,
    /// Spark configuration (norris adds `spark.yarn.tags` with the run key and attempt).
    pub conf: Vec<(String, String)>,
    /// Extra jars.
    pub jars: Vec<String>,
    /// Extra Python files.
    pub py_files: Vec<String>,
    /// Driver memory.
    pub driver_memory: Option<String>,
    /// Executor memory.
    pub executor_memory: Option<String>,
    /// Executor cores.
    pub executor_cores: Option<i64>,
    /// Number of executors.
    pub num_executors: Option<i64>,
}

/// Where a batch is, in the terms the scheduler decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchPhase {
    /// Accepted, application not running yet.
    Starting,
    /// Application running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error (or could not start).
    Failed,
    /// Killed.
    Killed,
    /// Any other state the server reported (e.g. `recovering`), kept verbatim.
    Other(String),
}

impl BatchPhase {
    /// True once the batch can change no more.
    pub fn is_final(&self) -> bool {
        matches!(self, BatchPhase::Succeeded | BatchPhase::Failed | BatchPhase::Killed)
    }

    /// The phase as Livy names its states, for messages an operator reads.
    pub fn name(&self) -> &str {
        match self {
            BatchPhase::Starting => "starting",
            BatchPhase::Running => "running",
            BatchPhase::Succeeded => "success",
            BatchPhase::Failed => "dead",
            BatchPhase::Killed => "killed",
            BatchPhase::Other(state) => state,
        }
    }
}

/// One look at a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchObservation {
    /// The server's id for it (valid only until the server restarts).
    pub id: i64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its phase.
    pub phase: BatchPhase,
    /// The last log lines, for failure reports.
    pub log_tail: Vec<String>,
}
