//! Pure decisions: functions of observed state and `now` that return what to do.
//!
//! No IO, no clock, no async in this crate (its only dependency is `norris-model`). The handlers
//! in `norris-control` read the world through ports, call these functions, and apply the result;
//! the simulator calls the same handlers, so every decision here is exercised under faults.

pub mod clusters;
pub mod definitions;
pub mod groups;
pub mod runs;
pub mod windows;

pub use definitions::{reconcile_job, DefinitionView, JobChange};
pub use runs::{advance_watermark, batch_submission, follow_run, place_runs, RunStep};
pub use windows::{cut_windows, CutPlan};
