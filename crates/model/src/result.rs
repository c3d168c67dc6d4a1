//! What a Spark attempt reports when it ends (the result item of `livy-jobs/README.md`). The
//! control plane publishes only on a `Succeeded` result of the run's current attempt.

use crate::ids::Attempt;
use crate::time::UnixTime;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Output written and every check passed: ready to publish.
    Succeeded,
    /// An error or a failed data-quality check: retried by the job's policy.
    Failed,
    /// A breaking schema change: the job stops until a person acts.
    Quarantined,
}

impl AttemptOutcome {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Quarantined => "quarantined",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "succeeded" => Some(AttemptOutcome::Succeeded),
            "failed" => Some(AttemptOutcome::Failed),
            "quarantined" => Some(AttemptOutcome::Quarantined),
            _ => None,
        }
    }
}

/// One data-quality check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Figures or the violation.
    pub detail: String,
}

/// An attempt's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// `<job>@<window_lo>`.
    pub run_key: String,
    /// The attempt that wrote it.
    pub attempt: Attempt,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Rows read from the source (window + lookback, de-duplicated).
    pub rows_read: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Data-quality checks.
    pub checks: Vec<Check>,
    /// The source schema read, as JSON (`[{name, type, nullable}]`).
    pub schema_json: String,
    /// `first`, `unchanged`, `evolved` or `breaking`.
    pub schema_verdict: String,
    /// What changed in the schema, naming columns and types.
    pub schema_change: String,
    /// Where the attempt's files are.
    pub output_prefix: String,
    /// One line for operators.
    pub message: String,
    /// When it ended.
    pub finished_at: UnixTime,
}
