//! norris's handlers: the async code each Lambda (and the CLI, and the simulator) runs. A handler
//! reads the world through ports (`norris-ports`), asks the pure engine (`norris-engine`) what to
//! do, and applies it with conditional writes, so running it twice, concurrently, or after a
//! crash between any two writes leaves the ledger right.

pub mod clusters;
pub mod config;
pub mod events;
pub mod follow;
pub mod grouped;
pub mod metrics;
pub mod scheduler;

pub use config::{ConfigError, SchedulerConfig};
pub use events::EventError;
pub use scheduler::{scheduler_tick, JobFailure, SchedulerError, TickReport};
