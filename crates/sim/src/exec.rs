//! A single-threaded executor for the handlers' futures: no runtime, no threads, no timers. The
//! in-memory models yield before every operation, so polling decides the interleaving; the
//! simulator picks it from the seed. A handler whose store "crashed" is dropped mid-flight, as a
//! Lambda dying between two effects would be.

use crate::rng::SimRng;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Polls at most this often before declaring a handler stuck (a livelock in the models).
const MAX_POLLS: u64 = 50_000_000;

/// A handler invocation: its future and the flag its store raises when the invocation dies.
pub struct Invocation<'a, T> {
    /// The handler's future.
    pub future: Pin<Box<dyn Future<Output = T> + 'a>>,
    /// Set when the invocation is to die: it is dropped at its next yield.
    pub crashed: Arc<AtomicBool>,
}

/// Runs the invocations concurrently, interleaving them by `rng` at every yield. Each entry of
/// the result is `None` when that invocation died before finishing.
pub fn run_concurrently<T>(mut invocations: Vec<Invocation<'_, T>>, rng: &mut SimRng) -> Vec<Option<T>> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out: Vec<Option<Option<T>>> = invocations.iter().map(|_| None).collect();
    let mut polls = 0u64;
    loop {
        let open: Vec<usize> = (0..invocations.len()).filter(|&i| out[i].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let i = open[rng.range(0, open.len() as i64 - 1) as usize];
        let inv = &mut invocations[i];
        if inv.crashed.load(Ordering::SeqCst) {
            out[i] = Some(None);
            continue;
        }
        if let Poll::Ready(v) = inv.future.as_mut().poll(&mut cx) {
            out[i] = Some(Some(v));
        } else if inv.crashed.load(Ordering::SeqCst) {
            out[i] = Some(None);
        }
        polls += 1;
        assert!(polls < MAX_POLLS, "handlers did not finish after {MAX_POLLS} polls: a livelock in the models");
    }
    out.into_iter().map(|o| o.flatten()).collect()
}

/// Runs one future to completion (setup and operator actions, which never crash).
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
