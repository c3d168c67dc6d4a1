//! Ports: the traits through which norris's handlers see the world (state store, clock), and
//! in-memory models of them that keep the real semantics (conditional writes, versions), used by
//! tests and the simulator. Real adapters live in their own crates (`norris-dynamo`, …).
//!
//! Every store implementation must pass [`conformance`], so the model and the real adapter cannot
//! drift apart.

pub mod batch;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod emr;
pub mod memory;
pub mod memory_emr;
pub mod memory_livy;
pub mod spec;
pub mod store;

pub use batch::{BatchError, BatchObservation, BatchPhase, BatchService, BatchSubmission};
pub use clock::{Clock, ManualClock, SystemClock};
pub use emr::{EmrError, EmrService, InstancePlacement};
pub use memory::MemoryStore;
pub use memory_emr::MemoryEmr;
pub use memory_livy::MemoryLivy;
pub use spec::{FileSpecs, MemorySpecs, SpecError, SpecStore};
pub use store::{Annotation, DefinitionRecord, GroupStore, StateStore, StoreError, WriteError};
