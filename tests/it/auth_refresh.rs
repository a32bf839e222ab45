//! Token refresh (docs/architecture.md, "Refresh") with a clock the test moves: one refresh at a time, no
//! network while fresh, the rotated file used at the next refresh, the old token served
//! while a refresh fails, and recovery once the service answers again.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aurora2bq::auth::TokenSource;
use aurora2bq::auth::cache::CachedTokenSource;
use aurora2bq::auth::clock::ManualClock;
use aurora2bq::auth::credentials;
use aurora2bq::auth::external::ExternalAccount;
use aurora2bq::trust::EndpointPolicy;
use aurora2bq_google_emulator::{Endpoint, Fault, TokenSpec};
use common::chain::{Chain, good_project};

use crate::common::FAST_RETRY as FAST;

fn cached(chain: &Chain) -> (Arc<CachedTokenSource>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let creds = credentials::load(&chain.cred_path).unwrap();
    let ext = ExternalAccount::new(
        creds,
        &EndpointPolicy::new(true, "googleapis.com"),
        reqwest::Client::new(),
        clock.clone(),
    )
    .unwrap()
    .with_retry(FAST);
    (Arc::new(CachedTokenSource::new(Arc::new(ext), clock.clone())), clock)
}

fn calls(chain: &Chain) -> (u64, u64) {
    (chain.emulator.calls(Endpoint::Sts), chain.emulator.calls(Endpoint::Iam))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_cause_one_exchange() {
    let chain = Chain::start(good_project()).await;
    let (source, _) = cached(&chain);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.token().await.unwrap().token.expose().to_owned() })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "every caller gets the same token");
    assert_eq!(calls(&chain), (1, 1));
    assert!(!chain.emulator.quota_header_seen(), "no quota-project header on STS or IAM");
}

#[tokio::test]
async fn no_calls_while_fresh_and_one_refresh_inside_the_margin() {
    let chain = Chain::start(good_project()).await;
    let (source, clock) = cached(&chain);
    let first = source.token().await.unwrap();
    for _ in 0..10 {
        source.token().await.unwrap();
    }
    clock.advance(Duration::from_secs(50 * 60)); // 10 min before expiry: still fresh
    assert_eq!(source.token().await.unwrap().token, first.token);
    assert_eq!(calls(&chain), (1, 1));
    clock.advance(Duration::from_secs(6 * 60)); // 4 min before expiry: inside the margin
    let second = source.token().await.unwrap();
    assert_ne!(second.token, first.token);
    assert_eq!(calls(&chain), (2, 2));
}

#[tokio::test]
async fn a_rotated_token_file_is_used_at_the_next_refresh() {
    let mut project = good_project();
    project.service_accounts[0].workload_identity_users.push(
        "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/subject/system:serviceaccount:analytics:rotated".into(),
    );
    let chain = Chain::start(project).await;
    let (source, clock) = cached(&chain);
    let t1 = source.token().await.unwrap();
    assert_eq!(
        chain.emulator.token_info(t1.token.expose()).unwrap().subject,
        "system:serviceaccount:analytics:aurora2bq"
    );
    chain.write_token(&TokenSpec { service_account: "rotated".into(), ..Default::default() });
    clock.advance(Duration::from_secs(58 * 60));
    let t2 = source.token().await.unwrap();
    assert_eq!(
        chain.emulator.token_info(t2.token.expose()).unwrap().subject,
        "system:serviceaccount:analytics:rotated"
    );
}

#[tokio::test]
async fn a_failed_refresh_serves_the_old_token_until_it_expires_then_recovers() {
    let chain = Chain::start(good_project()).await;
    let (source, clock) = cached(&chain);
    let first = source.token().await.unwrap();
    chain.emulator.inject(Endpoint::Sts, Fault::Status(503), 100);
    clock.advance(Duration::from_secs(57 * 60)); // inside the margin, not expired
    let served = source.token().await.expect("the old token, still valid");
    assert_eq!(served.token, first.token);
    let sts_after_failure = chain.emulator.calls(Endpoint::Sts);
    assert_eq!(sts_after_failure, 1 + FAST.max_attempts as u64, "bounded retries");
    // Right after a failure it does not hammer the service.
    assert_eq!(source.token().await.unwrap().token, first.token);
    assert_eq!(chain.emulator.calls(Endpoint::Sts), sts_after_failure);

    // The service answers again: the next refresh (after the short pause) recovers.
    chain.emulator.clear_faults();
    clock.advance(Duration::from_secs(11));
    let recovered = source.token().await.expect("recovered");
    assert_ne!(recovered.token, first.token);

    // Failing again and past the token's expiry: an error, never an expired token.
    chain.emulator.inject(Endpoint::Sts, Fault::Status(503), 100);
    clock.advance(Duration::from_secs(10 * 60));
    let e = source.token().await.expect_err("expired and refresh failing");
    assert!(e.is_transient(), "{e}");
}
