//! Identifiers as newtypes, so a job id is never passed where a cluster key is expected.

use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string the caller has already checked (or read back from the ledger).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

string_id!(
    /// The operator-chosen id of a job (the jobs table's key), e.g. `shop.orders`.
    JobId
);
string_id!(
    /// A pool's name: jobs ask for a size class, pools provide clusters of it (e.g. `small`).
    SizeClass
);
string_id!(
    /// norris's own key for a cluster, chosen before the EMR launch call so that a launch whose
    /// response was lost can be found again by tag; the EMR cluster id comes later.
    ClusterKey
);

/// Checks that `text` is a usable id: 1 to 128 characters of ASCII letters, digits, `.`, `_`, `-`.
/// Ids end up in S3 prefixes, Livy batch names and YARN tags, so they are kept plain.
pub fn check_id_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > 128 {
        return Err(format!("must be at most 128 characters, is {}", text.len()));
    }
    if let Some(c) = text.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("may hold only ASCII letters, digits, '.', '_' and '-', found {c:?}"));
    }
    Ok(())
}

/// The attempt number of a run: the fencing token. Only the current attempt may publish, so a
/// superseded attempt still running on a written-off cluster can never become visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(pub u32);

impl Attempt {
    /// The first attempt of a run.
    pub const FIRST: Attempt = Attempt(1);

    /// The attempt that supersedes this one.
    #[must_use]
    pub fn next(self) -> Attempt {
        Attempt(self.0 + 1)
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Optimistic-concurrency version of a ledger item: every write names the version it read and
/// fails if someone else wrote in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u64);

impl Version {
    /// The version a newly created item carries.
    pub const INITIAL: Version = Version(1);

    /// The version the next successful write produces.
    #[must_use]
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

/// One run per job and window: the window's start identifies it within its job, so creating the
/// same window twice is the same key twice, which the store refuses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunKey {
    /// The job the run belongs to.
    pub job_id: JobId,
    /// Start of the run's window (seconds since the epoch).
    pub window_lo: crate::UnixTime,
}

impl fmt::Display for RunKey {
    /// `job/window_lo`: used in logs, Livy batch names and YARN tags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.job_id, self.window_lo.0)
    }
}
