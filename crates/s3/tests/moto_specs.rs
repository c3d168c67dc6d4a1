//! The S3 spec store against a real S3 API: the moto server of the local world, reached through
//! the standard `AWS_ENDPOINT_URL` (path-style addressing, as `client_from_env` sets up for an
//! endpoint override). Each test makes its own bucket, so the tests run in parallel against one
//! server that other suites share.

use norris_ports::SpecStore;
use norris_s3::S3Specs;
use serde_json::{json, Value};

/// The SDK client on the local world, and a bucket name no other test uses.
async fn world(name: &str) -> (aws_sdk_s3::Client, String) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "these tests need the local world's moto server: run `make test`, or `make up` and `eval \"$(bash tests/local/world.sh env)\"` (AWS_ENDPOINT_URL is {endpoint:?})"
    );
    let client = norris_s3::client_from_env().await;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    (client, format!("t{}-{name}", nanos % 1_000_000_000_000))
}

/// A world with its bucket created.
async fn bucket(name: &str) -> (aws_sdk_s3::Client, String) {
    let (client, bucket) = world(name).await;
    client.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    (client, bucket)
}

/// The object at `s3://<bucket>/<key>`, and its content type.
async fn read(client: &aws_sdk_s3::Client, uri: &str) -> (Value, Option<String>) {
    let (bucket, key) = uri.strip_prefix("s3://").and_then(|r| r.split_once('/')).expect("an s3 URI");
    let object = client.get_object().bucket(bucket).key(key).send().await.expect("get");
    let content_type = object.content_type().map(str::to_string);
    let bytes = object.body.collect().await.expect("body").into_bytes();
    (serde_json::from_slice(&bytes).expect("json"), content_type)
}

fn spec() -> Value {
    json!({"group": "small/300/60/0/7", "attempt": 2, "members": [{"job_id": "j-1", "lag_secs": 60}, {"job_id": "j-2"}]})
}

#[tokio::test]
async fn a_spec_is_written_as_json_where_its_uri_says() {
    let (client, bucket) = bucket("put").await;
    let specs = S3Specs::from_uri(client.clone(), &format!("s3://{bucket}/specs/")).expect("valid");
    let uri = specs.put_spec("small/300/60/0/7-a2", &spec()).await.expect("put");
    assert_eq!(uri, format!("s3://{bucket}/specs/small-300-60-0-7-a2.json"));
    let (read, content_type) = read(&client, &uri).await;
    assert_eq!(read, spec());
    assert_eq!(content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn writing_a_spec_twice_rewrites_the_same_object() {
    let (client, bucket) = bucket("twice").await;
    let specs = S3Specs::from_uri(client.clone(), &format!("s3://{bucket}/specs")).expect("valid");
    let first = specs.put_spec("g-a1", &spec()).await.expect("first put");
    let second = specs.put_spec("g-a1", &spec()).await.expect("second put");
    assert_eq!(first, second);
    assert_eq!(read(&client, &second).await.0, spec());
    let listed = client.list_objects_v2().bucket(&bucket).prefix("specs/").send().await.expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["specs/g-a1.json"]);
}

#[tokio::test]
async fn a_missing_bucket_is_a_spec_error_naming_the_bucket() {
    let (client, bucket) = world("missing").await;
    let specs = S3Specs::from_uri(client, &format!("s3://{bucket}/specs/")).expect("valid");
    let err = specs.put_spec("g-a1", &spec()).await.expect_err("no such bucket");
    assert_eq!(err.name, "g-a1");
    assert!(err.message.contains(&bucket), "{err}");
    assert!(err.message.contains("specs/g-a1.json"), "{err}");
    assert!(err.message.contains("NoSuchBucket"), "the SDK's error is kept: {err}");
}
