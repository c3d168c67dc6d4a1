//! A client of Apache Livy's batch REST API (Livy 0.8/0.9), the only code in norris that knows
//! Livy's JSON. It implements the `BatchService` port.
//!
//! Livy forgets: finished batches vanish after a retain period and a restart resets ids to 0, so
//! nothing here treats a batch id as durable. Batches carry norris's name (run key + attempt); a
//! submission whose response was lost is retried, refused by Livy as a duplicate name, and the
//! existing batch is adopted by name.

mod wire;

use norris_ports::{BatchError, BatchObservation, BatchService, BatchSubmission};
use reqwest::{Method, StatusCode};
use std::time::Duration;
pub use wire::{Batch, BatchList, BatchLog, BatchRequest, BatchState};

/// Retry and timeout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (connection errors and 5xx are retried).
    pub attempts: u32,
    /// Delay before the second attempt; doubled each time.
    pub base_delay_ms: u64,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 3, base_delay_ms: 200, request_timeout_ms: 10_000 }
    }
}

/// A Livy client; cheap to clone, one per process (it pools connections to every endpoint).
#[derive(Debug, Clone)]
pub struct LivyClient {
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// What a single call can fail with, before it is mapped onto the port's `BatchError`.
#[derive(Debug, thiserror::Error)]
pub enum LivyError {
    /// No usable answer after retries.
    #[error("Livy at {endpoint} unreachable ({what}): {message}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The call, e.g. `GET /batches/3`.
        what: String,
        /// The last failure.
        message: String,
    },
    /// Livy answered 4xx (other than the 404 that calls map to `None`).
    #[error("Livy at {endpoint} refused {what}: {status} {message}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// The call.
        what: String,
        /// HTTP status.
        status: u16,
        /// Livy's `msg`, or the body.
        message: String,
    },
    /// The body was not the documented JSON.
    #[error("Livy at {endpoint} answered {what} with an unexpected body: {message}")]
    Decode {
        /// The endpoint.
        endpoint: String,
        /// The call.
        what: String,
        /// The decoding error.
        message: String,
    },
}

impl LivyError {
    fn refused_message(&self) -> Option<&str> {
        match self {
            LivyError::Refused { message, .. } => Some(message),
            _ => None,
        }
    }

    fn into_port(self) -> BatchError {
        match self {
            LivyError::Unreachable { endpoint, what, message } => {
                BatchError::Unreachable { endpoint, message: format!("{what}: {message}") }
            }
            LivyError::Decode { endpoint, what, message } => {
                BatchError::Unreachable { endpoint, message: format!("{what}: unexpected answer: {message}") }
            }
            LivyError::Refused { endpoint, message, .. } if message.contains("too many sessions") => {
                BatchError::Busy { endpoint, message }
            }
            LivyError::Refused { endpoint, message, what, status } => {
                BatchError::Rejected { endpoint, message: format!("{what}: {status} {message}") }
            }
        }
    }
}

struct Response {
    status: StatusCode,
    body: String,
    location: Option<String>,
}

impl LivyClient {
    /// A client with the given retry policy.
    pub fn new(retry: RetryPolicy) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(retry.request_timeout_ms.min(3_000)))
            .timeout(Duration::from_millis(retry.request_timeout_ms))
            .build()?;
        Ok(LivyClient { http, retry })
    }

    async fn call(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, LivyError> {
        let url = format!("{}{}", endpoint.trim_end_matches('/'), path);
        let what = format!("{method} {path}");
        let mut delay = Duration::from_millis(self.retry.base_delay_ms);
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            let mut req = self.http.request(method.clone(), &url).header("X-Requested-By", "norris");
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) if resp.status().is_server_error() => {
                    let status = resp.status();
                    last = format!("{status} {}", resp.text().await.unwrap_or_default());
                }
                Ok(resp) => {
                    let status = resp.status();
                    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let body = resp.text().await.map_err(|e| LivyError::Unreachable {
                        endpoint: endpoint.into(),
                        what: what.clone(),
                        message: e.to_string(),
                    })?;
                    return Ok(Response { status, body, location });
                }
                Err(e) => last = e.to_string(),
            }
            if attempt < self.retry.attempts {
                tracing::debug!(endpoint, %what, attempt, error = %last, "Livy call failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(LivyError::Unreachable { endpoint: endpoint.into(), what, message: last })
    }

    fn decode<T: serde::de::DeserializeOwned>(endpoint: &str, what: &str, body: &str) -> Result<T, LivyError> {
        serde_json::from_str(body).map_err(|e| LivyError::Decode {
            endpoint: endpoint.into(),
            what: what.into(),
            message: format!("{e}: {}", body.chars().take(200).collect::<String>()),
        })
    }

    fn refused(endpoint: &str, what: &str, r: &Response) -> LivyError {
        let message = serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| r.body.chars().take(200).collect());
        LivyError::Refused { endpoint: endpoint.into(), what: what.into(), status: r.status.as_u16(), message }
    }

    /// `POST /batches`. A duplicate-name refusal is returned as `Refused` (see `submit_or_adopt`).
    pub async fn create_batch(&self, endpoint: &str, request: &BatchRequest) -> Result<Batch, LivyError> {
        let body = serde_json::to_value(request).map_err(|e| LivyError::Decode {
            endpoint: endpoint.into(),
            what: "POST /batches".into(),
            message: e.to_string(),
        })?;
        let r = self.call(endpoint, Method::POST, "/batches", Some(&body)).await?;
        if r.status == StatusCode::CREATED || r.status == StatusCode::OK {
            let batch: Batch = Self::decode(endpoint, "POST /batches", &r.body)?;
            tracing::debug!(endpoint, id = batch.id, location = ?r.location, "batch created");
            return Ok(batch);
        }
        Err(Self::refused(endpoint, "POST /batches", &r))
    }

    /// `GET /batches/{id}` (numeric id) or by name (Livy looks non-numeric ids up by name).
    /// `None` when Livy does not know it (404).
    pub async fn get_batch(&self, endpoint: &str, id_or_name: &str) -> Result<Option<Batch>, LivyError> {
        let path = format!("/batches/{id_or_name}");
        let r = self.call(endpoint, Method::GET, &path, None).await?;
        match r.status {
            StatusCode::OK => Self::decode(endpoint, &path, &r.body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refused(endpoint, &path, &r)),
        }
    }

    /// `GET /batches/{id}/state`; `None` on 404.
    pub async fn batch_state(&self, endpoint: &str, id: i64) -> Result<Option<BatchState>, LivyError> {
        let path = format!("/batches/{id}/state");
        let r = self.call(endpoint, Method::GET, &path, None).await?;
        match r.status {
            StatusCode::OK => {
                #[derive(serde::Deserialize)]
                struct StateBody {
                    state: BatchState,
                }
                Self::decode::<StateBody>(endpoint, &path, &r.body).map(|b| Some(b.state))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refused(endpoint, &path, &r)),
        }
    }

    /// `GET /batches/{id}/log?from=&size=`; `None` on 404.
    pub async fn batch_log(
        &self,
        endpoint: &str,
        id: i64,
        from: i64,
        size: i64,
    ) -> Result<Option<BatchLog>, LivyError> {
        let path = format!("/batches/{id}/log?from={from}&size={size}");
        let r = self.call(endpoint, Method::GET, &path, None).await?;
        match r.status {
            StatusCode::OK => Self::decode(endpoint, &path, &r.body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refused(endpoint, &path, &r)),
        }
    }

    /// `GET /batches?from=&size=`.
    pub async fn list_batches(&self, endpoint: &str, from: i64, size: i64) -> Result<BatchList, LivyError> {
        let path = format!("/batches?from={from}&size={size}");
        let r = self.call(endpoint, Method::GET, &path, None).await?;
        match r.status {
            StatusCode::OK => Self::decode(endpoint, &path, &r.body),
            _ => Err(Self::refused(endpoint, &path, &r)),
        }
    }

    /// `DELETE /batches/{id}`: kills the application. `false` if Livy did not know the id.
    pub async fn delete_batch(&self, endpoint: &str, id: i64) -> Result<bool, LivyError> {
        let path = format!("/batches/{id}");
        let r = self.call(endpoint, Method::DELETE, &path, None).await?;
        match r.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Self::refused(endpoint, &path, &r)),
        }
    }

    /// Submits, or adopts the batch of the same name if Livy already has one (the earlier
    /// submission's response was lost, or another invocation submitted it).
    pub async fn submit_or_adopt(&self, endpoint: &str, request: &BatchRequest) -> Result<Batch, LivyError> {
        match self.create_batch(endpoint, request).await {
            Ok(b) => Ok(b),
            Err(e) if e.refused_message().is_some_and(|m| m.contains("Duplicate session name")) => {
                let name = request.name.as_deref().unwrap_or_default();
                match self.get_batch(endpoint, name).await? {
                    Some(existing) => {
                        tracing::info!(endpoint, name, id = existing.id, "adopted an existing batch of this name");
                        Ok(existing)
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

fn observe(b: Batch) -> BatchObservation {
    BatchObservation { id: b.id, name: b.name, phase: b.state.phase(), log_tail: b.log }
}

impl BatchService for LivyClient {
    async fn submit(&self, endpoint: &str, batch: &BatchSubmission) -> Result<BatchObservation, BatchError> {
        let request = BatchRequest::from_submission(batch);
        self.submit_or_adopt(endpoint, &request).await.map(observe).map_err(LivyError::into_port)
    }

    async fn find(&self, endpoint: &str, name: &str) -> Result<Option<BatchObservation>, BatchError> {
        // A numeric-looking name would be taken for an id; norris's names never are.
        let found = self.get_batch(endpoint, name).await.map_err(LivyError::into_port)?;
        Ok(found.filter(|b| b.name.as_deref() == Some(name)).map(observe))
    }

    async fn kill(&self, endpoint: &str, id: i64) -> Result<bool, BatchError> {
        self.delete_batch(endpoint, id).await.map_err(LivyError::into_port)
    }

    async fn ping(&self, endpoint: &str) -> Result<(), BatchError> {
        self.list_batches(endpoint, 0, 1).await.map(|_| ()).map_err(LivyError::into_port)
    }
}
