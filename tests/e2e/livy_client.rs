//! norris's Livy client against the Livy stand-in, which follows Livy's documented batch API and
//! shares no code with the client. The stand-in runs the fast fake spark-submit here; the
//! extraction tests run real Spark.

use anyhow::Result;
use norris_e2e::{repo_root, wait_until, LivyStandin};
use norris_livy::{BatchRequest, BatchState, LivyClient, RetryPolicy};
use norris_ports::{BatchError, BatchPhase, BatchService, BatchSubmission};
use std::time::Duration;

fn fake_standin(retain_secs: u64) -> Result<LivyStandin> {
    let fake = repo_root().join("tests/local/livy_standin/fake_spark_submit.py");
    LivyStandin::start_with(0, retain_secs, &["--spark-submit", fake.to_str().expect("utf-8 path")])
}

fn submission(name: &str, steps: &[&str]) -> BatchSubmission {
    BatchSubmission {
        name: name.into(),
        file: "local:/opt/app.py".into(),
        args: steps.iter().map(|s| s.to_string()).collect(),
        conf: vec![("spark.yarn.tags".into(), format!("{name}-tag"))],
        driver_memory: Some("512m".into()),
        ..BatchSubmission::default()
    }
}

fn client() -> Result<LivyClient> {
    Ok(LivyClient::new(RetryPolicy { attempts: 3, base_delay_ms: 50, request_timeout_ms: 5_000 })?)
}

async fn phase_of(livy: &LivyClient, endpoint: &str, name: &str) -> Result<Option<BatchPhase>> {
    Ok(livy.find(endpoint, name).await?.map(|b| b.phase))
}

#[tokio::test]
async fn the_whole_batch_api_round_trips() -> Result<()> {
    let standin = fake_standin(600)?;
    let ep = standin.endpoint.as_str();
    let livy = client()?;
    let created = livy.submit(ep, &submission("norris-j-1-a1", &["context", "sleep=30"])).await?;
    assert_eq!(created.id, 0, "ids start at 0");
    assert_eq!(created.name.as_deref(), Some("norris-j-1-a1"));
    let running = wait_until("running", Duration::from_secs(20), Duration::from_millis(100), || async {
        Ok(livy.batch_state(ep, 0).await?.filter(|s| *s == BatchState::Running))
    })
    .await?;
    assert_eq!(running, BatchState::Running);
    let by_id = livy.get_batch(ep, "0").await?.expect("known");
    assert!(by_id.app_id.as_deref().is_some_and(|a| a.starts_with("local-")), "{by_id:?}");
    let log = livy.batch_log(ep, 0, 0, 10).await?.expect("log");
    assert_eq!(log.id, 0);
    assert!(log.total >= log.log.len() as i64);
    let list = livy.list_batches(ep, 0, 10).await?;
    assert_eq!((list.total, list.sessions.len()), (1, 1));
    assert!(livy.kill(ep, 0).await?, "deleted");
    assert!(!livy.kill(ep, 0).await?, "a second delete finds nothing");
    assert_eq!(livy.get_batch(ep, "0").await?, None);
    assert_eq!(livy.find(ep, "norris-j-1-a1").await?, None);
    Ok(())
}

#[tokio::test]
async fn a_second_submission_of_the_same_name_adopts_the_first_batch() -> Result<()> {
    let standin = fake_standin(600)?;
    let ep = standin.endpoint.as_str();
    let livy = client()?;
    let first = livy.submit(ep, &submission("norris-j-2-a1", &["context", "sleep=30"])).await?;
    let second = livy.submit(ep, &submission("norris-j-2-a1", &["context", "sleep=30"])).await?;
    assert_eq!(first.id, second.id);
    assert_eq!(livy.list_batches(ep, 0, 10).await?.total, 1, "Livy holds one batch");
    // The raw call shows what Livy itself answers.
    let raw = livy
        .create_batch(
            ep,
            &BatchRequest { name: Some("norris-j-2-a1".into()), file: "local:/x.py".into(), ..Default::default() },
        )
        .await
        .expect_err("duplicate name");
    assert!(raw.to_string().contains("Duplicate session name"), "{raw}");
    Ok(())
}

#[tokio::test]
async fn final_states_map_to_phases_and_finished_batches_are_forgotten() -> Result<()> {
    let standin = fake_standin(2)?;
    let ep = standin.endpoint.as_str();
    let livy = client()?;
    livy.submit(ep, &submission("ok", &["context", "exit=0"])).await?;
    livy.submit(ep, &submission("boom", &["context", "lines=3", "exit=1"])).await?;
    let ok = wait_until("ok to finish", Duration::from_secs(20), Duration::from_millis(100), || async {
        Ok(phase_of(&livy, ep, "ok").await?.filter(BatchPhase::is_final))
    })
    .await?;
    assert_eq!(ok, BatchPhase::Succeeded);
    let boom = wait_until("boom to finish", Duration::from_secs(20), Duration::from_millis(100), || async {
        Ok(livy.find(ep, "boom").await?.filter(|b| b.phase.is_final()))
    })
    .await?;
    assert_eq!(boom.phase, BatchPhase::Failed);
    assert!(!boom.log_tail.is_empty(), "the log tail comes with the batch");
    wait_until("Livy to forget", Duration::from_secs(20), Duration::from_millis(200), || async {
        Ok(phase_of(&livy, ep, "ok").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_livy_is_reported_after_retries() -> Result<()> {
    // Bind and drop a listener to find a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let ep = format!("http://127.0.0.1:{port}");
    let livy = client()?;
    let started = std::time::Instant::now();
    let err = livy.submit(&ep, &submission("x", &[])).await.expect_err("unreachable");
    assert!(matches!(err, BatchError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("POST /batches"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(150), "retried with backoff (50 + 100 ms)");
    assert!(matches!(livy.ping(&ep).await, Err(BatchError::Unreachable { .. })));
    Ok(())
}
