//! The S3 adapter of the spec port (`norris_ports::SpecStore`): in AWS, a group attempt's spec is
//! written to S3 and its Spark application reads it back by URI (`livy-jobs/extract.py`,
//! `read_uri`), because a few hundred members outgrow one command-line argument.
//!
//! Where the specs go is one setting, `NORRIS_SPEC_URI` (`s3://<bucket>/<prefix>/`), set by the
//! CDK stack to the artifacts bucket's `specs/` prefix. There a lifecycle rule expires them: a
//! spec is read once, at submission.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use norris_ports::{SpecError, SpecStore};
use serde_json::Value;

/// The environment variable naming where group specs are written (`s3://<bucket>/<prefix>/`).
pub const SPEC_URI_VAR: &str = "NORRIS_SPEC_URI";

/// Builds an S3 client from the standard AWS environment (region, credentials,
/// `AWS_ENDPOINT_URL` for moto locally), with retries and timeouts suited to a Lambda tick.
///
/// With an endpoint override the client addresses buckets by path (`<endpoint>/<bucket>/<key>`)
/// rather than by host name: moto, and other S3 stand-ins on `127.0.0.1`, have no per-bucket
/// host names. Against AWS itself (no override) the SDK's virtual-hosted default stays.
pub async fn client_from_env() -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(5))
                .operation_timeout(std::time::Duration::from_secs(20))
                .build(),
        )
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(config.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// What is wrong with a spec URI setting (`NORRIS_SPEC_URI`), named so a bad deployment is fixed
/// from the message alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecUriError {
    /// The setting is missing from the environment.
    #[error("{SPEC_URI_VAR} is not set: it names where group specs are written (s3://<bucket>/<prefix>/; the stack sets it)")]
    Missing,
    /// The URI does not start with `s3://`.
    #[error("the spec URI {uri:?} must start with s3:// (s3://<bucket>/<prefix>/)")]
    NotS3 {
        /// The URI as given.
        uri: String,
    },
    /// Nothing names a bucket between `s3://` and the first `/`.
    #[error("the spec URI {uri:?} names no bucket (s3://<bucket>/<prefix>/)")]
    NoBucket {
        /// The URI as given.
        uri: String,
    },
    /// The bucket name breaks S3's naming rules, so every write would fail.
    #[error("the spec URI {uri:?} names an invalid bucket {bucket:?}: {reason}")]
    InvalidBucket {
        /// The URI as given.
        uri: String,
        /// The bucket name found in it.
        bucket: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

/// Specs written as JSON objects to `s3://<bucket>/<prefix><name>.json`.
///
/// The name's `/` and `\` become `-`, as in `norris_ports::FileSpecs`: each spec is one object
/// directly under the prefix, with the same file name as in the local world, and the URI handed
/// to the application needs no escaping. (Keeping `/` would be safe for S3 and for the IAM
/// scope, `<prefix>*` matching any depth, but buys nothing.)
///
/// A name is unique per group attempt, so writing it twice (a retried tick) rewrites the same
/// content: PutObject is idempotent, and the SDK's standard retries with backoff apply.
#[derive(Debug, Clone)]
pub struct S3Specs {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Specs {
    /// Specs where `NORRIS_SPEC_URI` says, with a client from the environment: what each Lambda
    /// builds at start, so a missing or bad setting stops it before any event is handled.
    pub async fn from_env() -> Result<S3Specs, SpecUriError> {
        let uri = std::env::var(SPEC_URI_VAR).map_err(|_| SpecUriError::Missing)?;
        S3Specs::from_uri(client_from_env().await, &uri)
    }

    /// Specs under `uri`, `s3://<bucket>/<prefix>`: the bucket must be a valid S3 bucket name;
    /// the prefix may be empty (the bucket's root) and is read as a folder, so `s3://b/specs`
    /// and `s3://b/specs/` both write `specs/<name>.json`.
    pub fn from_uri(client: aws_sdk_s3::Client, uri: &str) -> Result<S3Specs, SpecUriError> {
        let (bucket, prefix) = parse_uri(uri)?;
        Ok(S3Specs { client, bucket, prefix })
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix: empty, or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object key a spec named `name` is written under.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}.json", self.prefix, name.replace(['/', '\\'], "-"))
    }
}

impl SpecStore for S3Specs {
    async fn put_spec(&self, name: &str, spec: &Value) -> Result<String, SpecError> {
        let key = self.key(name);
        let uri = format!("s3://{}/{key}", self.bucket);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(spec.to_string().into_bytes()))
            .send()
            .await
            .map_err(|e| SpecError {
                name: name.to_string(),
                message: format!("PutObject to bucket {} key {key} failed: {}", self.bucket, DisplayErrorContext(&e)),
            })?;
        Ok(uri)
    }
}

/// Splits `s3://<bucket>/<prefix>` into the bucket and a prefix that is empty or ends in `/`.
fn parse_uri(uri: &str) -> Result<(String, String), SpecUriError> {
    let rest = uri.strip_prefix("s3://").ok_or_else(|| SpecUriError::NotS3 { uri: uri.to_string() })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(SpecUriError::NoBucket { uri: uri.to_string() });
    }
    if let Err(reason) = check_bucket(bucket) {
        return Err(SpecUriError::InvalidBucket { uri: uri.to_string(), bucket: bucket.to_string(), reason });
    }
    let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
    Ok((bucket.to_string(), prefix))
}

/// S3's bucket naming rules that a mistyped setting breaks (general purpose buckets).
fn check_bucket(bucket: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&bucket.len()) {
        return Err("a bucket name has 3 to 63 characters");
    }
    if !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err("a bucket name has only lowercase letters, digits, '.' and '-'");
    }
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bucket.bytes().next().is_some_and(alphanumeric) || !bucket.bytes().last().is_some_and(alphanumeric) {
        return Err("a bucket name begins and ends with a letter or digit");
    }
    if bucket.contains("..") {
        return Err("a bucket name has no two adjacent '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that is never called: `from_uri` only parses.
    fn client() -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    fn parse(uri: &str) -> Result<(String, String), SpecUriError> {
        S3Specs::from_uri(client(), uri).map(|s| (s.bucket().to_string(), s.prefix().to_string()))
    }

    #[test]
    fn a_uri_gives_the_bucket_and_a_folder_prefix() {
        assert_eq!(parse("s3://norris-artifacts/specs/"), Ok(("norris-artifacts".into(), "specs/".into())));
        assert_eq!(parse("s3://norris-artifacts/specs"), Ok(("norris-artifacts".into(), "specs/".into())));
        assert_eq!(parse("s3://norris-artifacts/a/b/"), Ok(("norris-artifacts".into(), "a/b/".into())));
        assert_eq!(parse("s3://norris-artifacts/"), Ok(("norris-artifacts".into(), "".into())));
        assert_eq!(parse("s3://norris-artifacts"), Ok(("norris-artifacts".into(), "".into())));
    }

    #[test]
    fn a_uri_of_another_scheme_is_rejected() {
        for uri in
            ["file:///tmp/specs/", "S3://bucket/specs/", "https://bucket.s3.amazonaws.com/specs/", "bucket/specs"]
        {
            assert_eq!(parse(uri), Err(SpecUriError::NotS3 { uri: uri.into() }), "{uri}");
        }
        let message = parse("file:///tmp/specs/").expect_err("not s3").to_string();
        assert!(message.contains("file:///tmp/specs/") && message.contains("s3://"), "{message}");
    }

    #[test]
    fn a_uri_without_a_bucket_is_rejected() {
        for uri in ["s3://", "s3:///specs/"] {
            assert_eq!(parse(uri), Err(SpecUriError::NoBucket { uri: uri.into() }), "{uri}");
        }
    }

    #[test]
    fn an_invalid_bucket_name_is_named() {
        for bucket in ["ab", "Norris-Artifacts", "norris_artifacts", "-norris", "norris.", "a..b", "bucket:1"] {
            let uri = format!("s3://{bucket}/specs/");
            let err = parse(&uri).expect_err(bucket);
            assert!(matches!(&err, SpecUriError::InvalidBucket { bucket: b, .. } if b == bucket), "{err:?}");
            assert!(err.to_string().contains(&format!("{bucket:?}")), "{err}");
        }
    }

    #[test]
    fn keys_are_flat_json_objects_under_the_prefix() {
        let specs = S3Specs::from_uri(client(), "s3://norris-artifacts/specs/").expect("valid");
        assert_eq!(specs.key("small/300/60/0/7-a2"), "specs/small-300-60-0-7-a2.json");
        assert_eq!(specs.key(r"a\b"), "specs/a-b.json");
    }
}
