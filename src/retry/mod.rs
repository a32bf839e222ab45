//! The one way to retry a call to Google: one policy (bounded attempts, a total deadline,
//! full-jitter exponential backoff), one decision of what may pass ([`transient`]), and one
//! [`Backoff`] that both the call loop ([`retry`]) and the Storage Write stream's reconnects
//! use. STS, IAM, BigQuery REST and the Storage Write API all go through it, so a CronJob never
//! retries forever and every caller waits the same way.

pub mod transient;

use std::future::Future;
use std::time::{Duration, Instant};

pub use transient::Verdict;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No new attempt starts after this much time since the first.
    pub deadline: Duration,
}

impl Policy {
    /// For control-plane calls (STS, IAM, REST): 0.5 s doubling to 30 s, 6 attempts, 3 min.
    pub const STANDARD: Policy = Policy {
        initial_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
        max_attempts: 6,
        deadline: Duration::from_secs(180),
    };

    /// The delay before attempt `n` (1-based count of failures so far): uniform in
    /// [0, min(max, initial × 2^(n−1))], "full jitter", so many pods retrying at once spread out.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = self.initial_delay.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(fastrand::f64())
    }
}

/// Where a sequence of attempts stands: how many failed, and since when.
#[derive(Debug)]
pub struct Backoff {
    policy: Policy,
    started: Instant,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: Policy) -> Self {
        Self { policy, started: Instant::now(), failures: 0 }
    }

    /// Records a failure; returns how long to wait before the next attempt, or `None` when
    /// the failure is permanent or the policy is spent. A server's own wait (Retry-After,
    /// gRPC RetryInfo) is honoured when longer than ours, within the policy's cap.
    pub fn next(&mut self, verdict: Verdict) -> Option<Duration> {
        self.failures += 1;
        let Verdict::Transient { after } = verdict else { return None };
        let ours = self.policy.delay(self.failures);
        let delay = after.map_or(ours, |a| a.min(self.policy.max_delay).max(ours));
        let out_of_time = self.started.elapsed() + delay >= self.policy.deadline;
        (self.failures < self.policy.max_attempts && !out_of_time).then_some(delay)
    }

    /// Attempts so far, the one under way included.
    pub fn attempts(&self) -> u32 {
        self.failures + 1
    }

    /// Progress was made (a long stream's append succeeded): later failures start afresh.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.started = Instant::now();
    }
}

/// The last error and how many attempts were made.
#[derive(Debug)]
pub struct GaveUp<E> {
    pub error: E,
    pub attempts: u32,
}

/// Runs `op` until it succeeds, fails permanently, or the policy runs out: the one retry
/// loop of the crate.
pub async fn retry<T, E, F, Fut>(policy: &Policy, verdict: impl Fn(&E) -> Verdict, mut op: F) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(*policy);
    loop {
        let attempt = backoff.attempts();
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => match backoff.next(verdict(&e)) {
                None => return Err(GaveUp { error: e, attempts: attempt }),
                Some(delay) => {
                    tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying after a transient failure");
                    tokio::time::sleep(delay).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: Policy = Policy {
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        max_attempts: 4,
        deadline: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn transient_errors_are_retried_up_to_the_limit() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(
            &FAST,
            |_: &&str| Verdict::RETRY,
            |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("503")
            },
        )
        .await;
        let gave_up = r.unwrap_err();
        assert_eq!(gave_up.attempts, 4);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn permanent_errors_stop_at_once_and_success_returns() {
        let r: Result<(), _> = retry(&FAST, |_: &&str| Verdict::Permanent, |_| async { Err("400") }).await;
        assert_eq!(r.unwrap_err().attempts, 1);
        let r =
            retry(&FAST, |_: &&str| Verdict::RETRY, |n| async move { if n < 3 { Err("503") } else { Ok(n) } }).await;
        assert_eq!(r.unwrap(), 3);
    }

    #[test]
    fn a_servers_wait_is_honoured_within_the_cap() {
        let mut b = Backoff::new(FAST);
        let asked = Verdict::Transient { after: Some(Duration::from_millis(3)) };
        assert!(b.next(asked).unwrap() >= Duration::from_millis(3));
        let too_long = Verdict::Transient { after: Some(Duration::from_secs(60)) };
        assert_eq!(b.next(too_long), Some(FAST.max_delay));
        assert_eq!(b.next(Verdict::Permanent), None);
        b.reset();
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn delays_stay_under_the_cap() {
        for n in 1..40 {
            assert!(Policy::STANDARD.delay(n) <= Policy::STANDARD.max_delay);
        }
    }
}
