//! The one retry policy: bounded attempts, a total deadline, and full-jitter exponential
//! backoff. Used for STS, IAM, BigQuery REST and the Storage Write API alike, so a CronJob
//! never retries forever and every caller waits the same way (traps.md 16).

use std::future::Future;
use std::time::{Duration, Instant};

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

/// The last error and how many attempts were made.
#[derive(Debug)]
pub struct GaveUp<E> {
    pub error: E,
    pub attempts: u32,
}

/// Runs `op` until it succeeds, fails permanently, or the policy runs out.
pub async fn retry<T, E, F, Fut>(policy: &Policy, is_transient: impl Fn(&E) -> bool, mut op: F) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let delay = policy.delay(attempt);
                let out_of_time = started.elapsed() + delay >= policy.deadline;
                if !is_transient(&e) || attempt >= policy.max_attempts || out_of_time {
                    return Err(GaveUp { error: e, attempts: attempt });
                }
                tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying after a transient failure");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
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
            |_: &&str| true,
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
        let r: Result<(), _> = retry(&FAST, |_: &&str| false, |_| async { Err("400") }).await;
        assert_eq!(r.unwrap_err().attempts, 1);
        let r = retry(&FAST, |_: &&str| true, |n| async move { if n < 3 { Err("503") } else { Ok(n) } }).await;
        assert_eq!(r.unwrap(), 3);
    }

    #[test]
    fn delays_stay_under_the_cap() {
        for n in 1..40 {
            assert!(Policy::STANDARD.delay(n) <= Policy::STANDARD.max_delay);
        }
    }
}
