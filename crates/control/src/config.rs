//! Handler configuration from the environment, read once at cold start. Every problem is
//! collected and named by its variable, so a bad deployment is fixed in one go.

use std::collections::HashMap;

/// Configuration problems, one line per variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// What the extraction scheduler needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Deployment prefix of the DynamoDB tables (`NORRIS_TABLE_PREFIX`).
    pub table_prefix: String,
    /// How often the full definition sweep runs (`NORRIS_DEFINITION_SWEEP_SECS`, default 900):
    /// it picks up jobs created or edited outside `norris jobs put`; due jobs re-read their own
    /// definition on every tick regardless.
    pub definition_sweep_secs: i64,
    /// Due jobs handled per tick at most (`NORRIS_MAX_DUE_PER_TICK`, default 5000); the rest stay
    /// due and come first next tick.
    pub max_due_per_tick: usize,
}

pub(crate) fn number(
    env: &HashMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
    max: i64,
    errors: &mut Vec<String>,
) -> i64 {
    match env.get(key) {
        None => default,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(n) => {
                errors.push(format!("{key} must be between {min} and {max}, is {n}"));
                default
            }
            Err(_) => {
                errors.push(format!("{key} must be a whole number, is {text:?}"));
                default
            }
        },
    }
}

impl SchedulerConfig {
    /// Reads the configuration from a map of environment variables.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let table_prefix = match env.get("NORRIS_TABLE_PREFIX").map(|s| s.trim()) {
            Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                p.to_string()
            }
            Some(p) => {
                errors.push(format!("NORRIS_TABLE_PREFIX must be letters, digits, '-' or '_', is {p:?}"));
                String::new()
            }
            None => {
                errors.push("NORRIS_TABLE_PREFIX is required (the deployment's table prefix, e.g. norris)".into());
                String::new()
            }
        };
        let definition_sweep_secs = number(env, "NORRIS_DEFINITION_SWEEP_SECS", 900, 60, 86_400, &mut errors);
        let max_due_per_tick = number(env, "NORRIS_MAX_DUE_PER_TICK", 5000, 1, 1_000_000, &mut errors) as usize;
        if errors.is_empty() {
            Ok(SchedulerConfig { table_prefix, definition_sweep_secs, max_due_per_tick })
        } else {
            Err(ConfigError(errors))
        }
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_map(&std::env::vars().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_variable_is_named() {
        let env = HashMap::from([
            ("NORRIS_DEFINITION_SWEEP_SECS".to_string(), "soon".to_string()),
            ("NORRIS_MAX_DUE_PER_TICK".to_string(), "0".to_string()),
        ]);
        let err = SchedulerConfig::from_env_map(&env).expect_err("invalid");
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(err.to_string().contains("NORRIS_TABLE_PREFIX is required"));
        assert!(err.to_string().contains("NORRIS_DEFINITION_SWEEP_SECS must be a whole number"));
        assert!(err.to_string().contains("NORRIS_MAX_DUE_PER_TICK must be between 1 and 1000000, is 0"));
    }

    #[test]
    fn defaults_apply() {
        let env = HashMap::from([("NORRIS_TABLE_PREFIX".to_string(), "norris-prod".to_string())]);
        let cfg = SchedulerConfig::from_env_map(&env).expect("valid");
        assert_eq!(cfg.definition_sweep_secs, 900);
        assert_eq!(cfg.max_due_per_tick, 5000);
    }
}
