//! The credential chain against the strict emulator: each misconfiguration is refused the
//! way Google refuses it, and aurora2bq's error names the link that broke and the fix.

use crate::common;

use std::sync::Arc;

use aurora2bq::auth::clock::SystemClock;
use aurora2bq::auth::credentials;
use aurora2bq::auth::external::ExternalAccount;
use aurora2bq::auth::{AuthError, Link, TokenSource};
use aurora2bq::trust::EndpointPolicy;
use aurora2bq_google_emulator::{KeyChoice, TokenSpec};
use common::chain::{Chain, SA, good_project};

use crate::common::FAST_RETRY as FAST;

fn source(chain: &Chain, policy: EndpointPolicy) -> Result<ExternalAccount, AuthError> {
    let creds = credentials::load(&chain.cred_path)?;
    Ok(ExternalAccount::new(creds, &policy, reqwest::Client::new(), Arc::new(SystemClock))?.with_retry(FAST))
}

async fn token(chain: &Chain) -> Result<aurora2bq::auth::AccessToken, AuthError> {
    source(chain, EndpointPolicy::new(true, "googleapis.com"))?.token().await
}

#[tokio::test]
async fn the_good_chain_yields_the_service_accounts_token() {
    let chain = Chain::start(good_project()).await;
    let t = token(&chain).await.expect("token");
    let info = chain.emulator.token_info(t.token.expose()).expect("an emulator-issued token");
    assert_eq!(info.email.as_deref(), Some(SA));
    assert_eq!(info.subject, "system:serviceaccount:analytics:aurora2bq");
    assert!(!format!("{t:?}").contains(t.token.expose()), "Debug must not print the token");
}

struct Case {
    name: &'static str,
    setup: fn(&Chain),
    link: Link,
    problem: &'static str,
    fix: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "wrong audience",
        setup: |c| c.write_token(&TokenSpec { audience: vec!["aurora-batch".into()], ..Default::default() }),
        link: Link::StsExchange,
        problem: "The audience in ID Token [aurora-batch] does not match the expected audience.",
        fix: "--allowed-audiences=aurora-batch",
    },
    Case {
        // The pod's default token: the fix is the token path, never allowing the API audience.
        name: "Kubernetes API audience",
        setup: |c| {
            c.write_token(&TokenSpec { audience: vec!["https://kubernetes.default.svc".into()], ..Default::default() })
        },
        link: Link::StsExchange,
        problem: "the Kubernetes API's",
        fix: "Do not add the Kubernetes API audience to the provider",
    },
    Case {
        name: "wrong issuer",
        setup: |c| {
            c.write_token(&TokenSpec {
                issuer: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/OTHER".into()),
                ..Default::default()
            })
        },
        link: Link::StsExchange,
        problem: "The issuer in ID Token https://oidc.eks.eu-west-1.amazonaws.com/id/OTHER does not match",
        fix: "--issuer-uri=https://oidc.eks.eu-west-1.amazonaws.com/id/OTHER",
    },
    Case {
        name: "expired token",
        setup: |c| c.write_token(&TokenSpec { lifetime_secs: -3600, ..Default::default() }),
        link: Link::StsExchange,
        problem: "is stale to sign-in",
        fix: "projected volume",
    },
    Case {
        name: "bad signature",
        setup: |c| c.write_token(&TokenSpec { key: KeyChoice::SameKidOtherKey, ..Default::default() }),
        link: Link::StsExchange,
        problem: "Unable to verify the ID Token signature.",
        fix: "jwksJson",
    },
    Case {
        name: "unknown signing key",
        setup: |c| c.write_token(&TokenSpec { key: KeyChoice::UnknownKid, ..Default::default() }),
        link: Link::StsExchange,
        problem: "Error connecting to the given credential's issuer.",
        fix: "kid",
    },
    Case {
        name: "no workloadIdentityUser binding",
        setup: |c| c.emulator.update(|p| p.service_accounts[0].workload_identity_users.clear()),
        link: Link::Impersonation,
        problem: "Permission 'iam.serviceAccounts.getAccessToken' denied",
        fix: "--member='principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/attribute.ksa_name/analytics:aurora2bq'",
    },
    Case {
        name: "principalSet without the namespace",
        setup: |c| {
            c.emulator.update(|p| {
            p.service_accounts[0].workload_identity_users = vec![
                "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/attribute.ksa_name/aurora2bq".into(),
            ]
        })
        },
        link: Link::Impersonation,
        problem: "may not impersonate aurora2bq@test-project.iam.gserviceaccount.com",
        fix: "attribute.ksa_name/analytics:aurora2bq'",
    },
    Case {
        name: "wrong service account email",
        setup: |c| {
            c.write_cred_config(|v| {
                v["service_account_impersonation_url"] = v["service_account_impersonation_url"]
                    .as_str()
                    .unwrap()
                    .replace("aurora2bq@", "aurora-2bq@")
                    .into();
            })
        },
        link: Link::Impersonation,
        problem: "Gaia id not found for email aurora-2bq@test-project.iam.gserviceaccount.com",
        fix: "service_account_impersonation_url",
    },
    Case {
        name: "provider disabled",
        setup: |c| c.emulator.update(|p| p.providers[0].disabled = true),
        link: Link::StsExchange,
        problem: "invalid_target",
        fix: "project NUMBER",
    },
    Case {
        name: "attribute condition rejects",
        setup: |c| {
            c.emulator.update(|p| {
                p.providers[0].attribute_condition = Some("assertion.sub == 'system:serviceaccount:prod:loader'".into())
            })
        },
        link: Link::StsExchange,
        problem: "rejected by the attribute condition",
        fix: "system:serviceaccount:analytics:aurora2bq",
    },
    Case {
        name: "subject over 127 bytes",
        setup: |c| {
            c.write_token(&TokenSpec {
                subject: Some(format!("system:serviceaccount:analytics:{}", "k".repeat(120))),
                ..Default::default()
            })
        },
        link: Link::StsExchange,
        problem: "exceeds the 127 bytes limit",
        fix: "google.subject=assertion.sub",
    },
    Case {
        name: "token file missing",
        setup: |c| std::fs::remove_file(&c.token_path).unwrap(),
        link: Link::SubjectToken,
        problem: "does not exist",
        fix: "serviceAccountToken",
    },
    Case {
        name: "token file empty",
        setup: |c| std::fs::write(&c.token_path, "\n").unwrap(),
        link: Link::SubjectToken,
        problem: "is empty",
        fix: "projection",
    },
];

#[tokio::test]
async fn each_misconfiguration_names_its_link_and_fix() {
    for case in CASES {
        let chain = Chain::start(good_project()).await;
        (case.setup)(&chain);
        let e = token(&chain).await.expect_err(case.name);
        let AuthError::Broken { link, problem, fix } = &e else { panic!("{}: not a broken link: {e}", case.name) };
        assert_eq!(*link, case.link, "{}: {e}", case.name);
        assert!(problem.contains(case.problem), "{}: problem {problem:?} lacks {:?}", case.name, case.problem);
        let fix = fix.as_deref().unwrap_or_default();
        assert!(fix.contains(case.fix), "{}: fix {fix:?} lacks {:?}", case.name, case.fix);
        assert!(!e.to_string().contains("eyJ"), "{}: the message shows a JWT", case.name);
    }
}

#[tokio::test]
async fn non_google_endpoints_are_refused_outside_development() {
    let chain = Chain::start(good_project()).await;
    let e = source(&chain, EndpointPolicy::strict()).err().expect("refused");
    assert_eq!(e.link(), Link::CredentialConfig);
    assert!(e.to_string().contains("token_url"), "{e}");
    assert_eq!(chain.emulator.calls(aurora2bq_google_emulator::Endpoint::Sts), 0, "no token may be sent");
}

#[tokio::test]
async fn the_binary_reports_the_broken_link_and_never_the_token() {
    let chain = Chain::start(good_project()).await;
    chain.write_token(&TokenSpec { audience: vec!["wrong-audience".into()], ..Default::default() });
    let secret = std::fs::read_to_string(&chain.token_path).unwrap();
    let config = common::write_config(chain.dir.path(), &chain, "unused", &["t"], "");
    let run = common::aurora2bq(
        &["run", "--config", config.to_str().unwrap()],
        &[("TEST_SOURCE_URL", "postgres://x@127.0.0.1:1/x")],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("STS token exchange failed"), "{}", run.stderr);
    assert!(run.stderr.contains("--allowed-audiences=wrong-audience"), "{}", run.stderr);
    assert!(!run.stderr.contains(secret.trim()) && !run.stdout.contains(secret.trim()));
}
