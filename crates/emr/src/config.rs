//! What every launch needs besides the pool: roles, network and logging, set by the CDK stack as
//! environment variables and read once at cold start. Every problem is collected and named by its
//! variable, so a bad deployment is fixed in one go.

use std::collections::HashMap;

/// The service role EMR assumes to manage the cluster (name or ARN).
pub const SERVICE_ROLE: &str = "NORRIS_EMR_SERVICE_ROLE";
/// The EC2 instance profile of the cluster's nodes (EMR's `JobFlowRole`).
pub const INSTANCE_PROFILE: &str = "NORRIS_EMR_INSTANCE_PROFILE";
/// Optional EMR security configuration name (encryption at rest and in transit).
pub const SECURITY_CONFIGURATION: &str = "NORRIS_EMR_SECURITY_CONFIGURATION";
/// Comma-separated subnet ids: the instance fleets pick the best of them at launch.
pub const SUBNET_IDS: &str = "NORRIS_EMR_SUBNET_IDS";
/// The EMR-managed security group of the primary node.
pub const PRIMARY_SECURITY_GROUP: &str = "NORRIS_EMR_PRIMARY_SECURITY_GROUP";
/// The EMR-managed security group of core and task nodes.
pub const CORE_SECURITY_GROUP: &str = "NORRIS_EMR_CORE_SECURITY_GROUP";
/// Optional EMR-managed service access security group (required by EMR in private subnets).
pub const SERVICE_ACCESS_SECURITY_GROUP: &str = "NORRIS_EMR_SERVICE_ACCESS_SECURITY_GROUP";
/// Optional extra security group on the primary node (the one the control plane reaches Livy by).
pub const ADDITIONAL_PRIMARY_SECURITY_GROUP: &str = "NORRIS_EMR_ADDITIONAL_PRIMARY_SECURITY_GROUP";
/// Optional S3 prefix for the cluster logs.
pub const LOG_URI: &str = "NORRIS_EMR_LOG_URI";

/// Configuration problems, one per variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid EMR configuration: {}", .0.join("; "))]
pub struct EmrConfigError(pub Vec<String>);

/// The deployment-wide launch settings (everything a `LaunchRequest` does not carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmrLaunchConfig {
    /// `NORRIS_EMR_SERVICE_ROLE`.
    pub service_role: String,
    /// `NORRIS_EMR_INSTANCE_PROFILE`.
    pub instance_profile: String,
    /// `NORRIS_EMR_SECURITY_CONFIGURATION`.
    pub security_configuration: Option<String>,
    /// `NORRIS_EMR_SUBNET_IDS`, at least one.
    pub subnet_ids: Vec<String>,
    /// `NORRIS_EMR_PRIMARY_SECURITY_GROUP`.
    pub primary_security_group: String,
    /// `NORRIS_EMR_CORE_SECURITY_GROUP`.
    pub core_security_group: String,
    /// `NORRIS_EMR_SERVICE_ACCESS_SECURITY_GROUP`.
    pub service_access_security_group: Option<String>,
    /// `NORRIS_EMR_ADDITIONAL_PRIMARY_SECURITY_GROUP`.
    pub additional_primary_security_group: Option<String>,
    /// `NORRIS_EMR_LOG_URI`.
    pub log_uri: Option<String>,
}

/// A variable's trimmed value; empty counts as unset, because CloudFormation cannot leave an
/// environment variable out conditionally and writes "" instead.
fn value<'a>(env: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required(env: &HashMap<String, String>, key: &str, what: &str, errors: &mut Vec<String>) -> String {
    match value(env, key) {
        Some(v) if v.chars().any(char::is_whitespace) => {
            errors.push(format!("{key} must not contain whitespace, is {v:?}"));
            String::new()
        }
        Some(v) => v.to_string(),
        None => {
            errors.push(format!("{key} is required ({what})"));
            String::new()
        }
    }
}

/// Checks an id against its EC2 prefix: catches a name or an ARN where an id belongs, which EMR
/// would only refuse at the first launch.
fn check_id(key: &str, id: &str, prefix: &str, errors: &mut Vec<String>) {
    let rest = id.strip_prefix(prefix).unwrap_or("");
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
        errors.push(format!("{key} must hold {prefix}… ids, has {id:?}"));
    }
}

fn security_group(
    env: &HashMap<String, String>,
    key: &str,
    what: &str,
    is_required: bool,
    errors: &mut Vec<String>,
) -> Option<String> {
    let id = match (value(env, key), is_required) {
        (Some(v), _) => v.to_string(),
        (None, true) => {
            errors.push(format!("{key} is required ({what})"));
            return None;
        }
        (None, false) => return None,
    };
    check_id(key, &id, "sg-", errors);
    Some(id)
}

impl EmrLaunchConfig {
    /// Reads the configuration from a map of environment variables.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, EmrConfigError> {
        let mut errors = Vec::new();
        let service_role = required(env, SERVICE_ROLE, "the EMR service role", &mut errors);
        let instance_profile = required(env, INSTANCE_PROFILE, "the instance profile of the nodes", &mut errors);
        let security_configuration = value(env, SECURITY_CONFIGURATION).map(str::to_string);
        let subnet_ids = match value(env, SUBNET_IDS) {
            None => {
                errors.push(format!("{SUBNET_IDS} is required (comma-separated subnet ids)"));
                Vec::new()
            }
            Some(text) => {
                let ids: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
                if ids.iter().any(String::is_empty) {
                    errors.push(format!("{SUBNET_IDS} has an empty entry: {text:?}"));
                }
                for id in ids.iter().filter(|id| !id.is_empty()) {
                    check_id(SUBNET_IDS, id, "subnet-", &mut errors);
                }
                ids.into_iter().filter(|id| !id.is_empty()).collect()
            }
        };
        let primary_security_group =
            security_group(env, PRIMARY_SECURITY_GROUP, "the primary node's security group", true, &mut errors);
        let core_security_group =
            security_group(env, CORE_SECURITY_GROUP, "the core and task nodes' security group", true, &mut errors);
        let service_access_security_group = security_group(env, SERVICE_ACCESS_SECURITY_GROUP, "", false, &mut errors);
        let additional_primary_security_group =
            security_group(env, ADDITIONAL_PRIMARY_SECURITY_GROUP, "", false, &mut errors);
        let log_uri = value(env, LOG_URI).map(str::to_string);
        if let Some(uri) = &log_uri {
            if uri.len() <= "s3://".len() || !uri.starts_with("s3://") {
                errors.push(format!("{LOG_URI} must be an s3:// URI, is {uri:?}"));
            }
        }
        if !errors.is_empty() {
            return Err(EmrConfigError(errors));
        }
        Ok(EmrLaunchConfig {
            service_role,
            instance_profile,
            security_configuration,
            subnet_ids,
            primary_security_group: primary_security_group.unwrap_or_default(),
            core_security_group: core_security_group.unwrap_or_default(),
            service_access_security_group,
            additional_primary_security_group,
            log_uri,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, EmrConfigError> {
        Self::from_env_map(&std::env::vars().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_missing_variable_is_named() {
        let err = EmrLaunchConfig::from_env_map(&HashMap::new()).expect_err("invalid");
        let text = err.to_string();
        for key in [SERVICE_ROLE, INSTANCE_PROFILE, SUBNET_IDS, PRIMARY_SECURITY_GROUP, CORE_SECURITY_GROUP] {
            assert!(text.contains(&format!("{key} is required")), "{key} not named: {text}");
        }
        assert_eq!(err.0.len(), 5, "{text}");
        for optional in
            [SECURITY_CONFIGURATION, SERVICE_ACCESS_SECURITY_GROUP, ADDITIONAL_PRIMARY_SECURITY_GROUP, LOG_URI]
        {
            assert!(!text.contains(optional), "{optional} is optional: {text}");
        }
    }

    #[test]
    fn malformed_values_are_named_with_what_they_hold() {
        let err = EmrLaunchConfig::from_env_map(&env(&[
            (SERVICE_ROLE, "EMR_DefaultRole"),
            (INSTANCE_PROFILE, "EMR EC2 profile"),
            (SUBNET_IDS, "subnet-0a1,,my-subnet"),
            (PRIMARY_SECURITY_GROUP, "sg-0primary"),
            (CORE_SECURITY_GROUP, "arn:aws:ec2:us-east-1:1:security-group/sg-1"),
            (SERVICE_ACCESS_SECURITY_GROUP, "sg-"),
            (LOG_URI, "/var/log/emr"),
        ]))
        .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("NORRIS_EMR_INSTANCE_PROFILE must not contain whitespace"), "{text}");
        assert!(text.contains("NORRIS_EMR_SUBNET_IDS has an empty entry"), "{text}");
        assert!(text.contains("NORRIS_EMR_SUBNET_IDS must hold subnet-… ids, has \"my-subnet\""), "{text}");
        assert!(text.contains("NORRIS_EMR_CORE_SECURITY_GROUP must hold sg-… ids"), "{text}");
        assert!(text.contains("NORRIS_EMR_SERVICE_ACCESS_SECURITY_GROUP must hold sg-… ids"), "{text}");
        assert!(text.contains("NORRIS_EMR_LOG_URI must be an s3:// URI"), "{text}");
        assert_eq!(err.0.len(), 6, "{text}");
    }

    #[test]
    fn a_complete_environment_reads_and_empty_optionals_are_unset() {
        let cfg = EmrLaunchConfig::from_env_map(&env(&[
            (SERVICE_ROLE, "arn:aws:iam::123456789012:role/norris-emr-service"),
            (INSTANCE_PROFILE, "norris-emr-nodes"),
            (SECURITY_CONFIGURATION, ""),
            (SUBNET_IDS, " subnet-0a1 , subnet-0b2"),
            (PRIMARY_SECURITY_GROUP, "sg-0primary"),
            (CORE_SECURITY_GROUP, "sg-0core"),
            (SERVICE_ACCESS_SECURITY_GROUP, "sg-0service"),
            (LOG_URI, "s3://norris-logs/emr/"),
        ]))
        .expect("valid");
        assert_eq!(cfg.subnet_ids, vec!["subnet-0a1".to_string(), "subnet-0b2".to_string()]);
        assert_eq!(cfg.security_configuration, None);
        assert_eq!(cfg.additional_primary_security_group, None);
        assert_eq!(cfg.service_access_security_group.as_deref(), Some("sg-0service"));
        assert_eq!(cfg.log_uri.as_deref(), Some("s3://norris-logs/emr/"));
    }
}
