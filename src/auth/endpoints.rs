//! Which hosts may receive the pod's subject token or an access token. A credential config
//! is input that could be hostile: outside the development switch, STS must be a Google
//! STS host and impersonation a Google IAM Credentials host, both over HTTPS.

use url::Url;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Development only: accept any http(s) host, e.g. the local emulator.
    pub allow_insecure: bool,
}

/// The Google service a URL must belong to.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    Sts,
    IamCredentials,
    BigQuery,
    BigQueryStorage,
    Oauth2,
}

impl Service {
    fn label(self) -> &'static str {
        match self {
            Service::Sts => "sts",
            Service::IamCredentials => "iamcredentials",
            Service::BigQuery => "bigquery",
            Service::BigQueryStorage => "bigquerystorage",
            Service::Oauth2 => "oauth2",
        }
    }
}

/// Checks `url` against the policy; the error says which key and why.
pub fn check(policy: Policy, service: Service, key: &str, url: &str) -> Result<Url, String> {
    check_in(policy, service, key, url, "googleapis.com")
}

/// As [`check`], for a credential config's `universe_domain` (default `googleapis.com`).
pub fn check_in(policy: Policy, service: Service, key: &str, url: &str, universe: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{key} {url:?} is not a URL: {e}"))?;
    if policy.allow_insecure {
        return match parsed.scheme() {
            "http" | "https" => Ok(parsed),
            other => Err(format!("{key} {url:?} uses scheme {other:?}; use http or https")),
        };
    }
    if parsed.scheme() != "https" {
        return Err(format!(
            "{key} {url:?} is not HTTPS; only Google endpoints over HTTPS are accepted \
             (allow_insecure_endpoints is for local development only)"
        ));
    }
    let host = parsed.host_str().unwrap_or_default();
    if !is_google_host(service.label(), host, universe) {
        return Err(format!(
            "{key} {url:?} is not a Google {} endpoint; a credential config must not send \
             tokens to another host",
            service.label()
        ));
    }
    Ok(parsed)
}

/// `S.googleapis.com`, `*.S.googleapis.com`, `S.*.googleapis.com`, `*-S.googleapis.com`,
/// `S-*.p.googleapis.com`, each optionally with `.mtls` before `googleapis.com` (the
/// patterns Google's libraries once enforced, wif-spec.md §1).
fn is_google_host(s: &str, host: &str, universe: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let Some(prefix) =
        host.strip_suffix(&format!(".mtls.{universe}")).or_else(|| host.strip_suffix(&format!(".{universe}")))
    else {
        return false;
    };
    let label_ok = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if prefix == s {
        return true;
    }
    if let Some(rest) = prefix.strip_suffix(&format!(".{s}")) {
        return label_ok(rest);
    }
    if let Some(rest) = prefix.strip_prefix(&format!("{s}.")) {
        return label_ok(rest);
    }
    if let Some(rest) = prefix.strip_suffix(&format!("-{s}")) {
        return label_ok(rest);
    }
    if let Some(rest) = prefix.strip_prefix(&format!("{s}-")).and_then(|r| r.strip_suffix(".p")) {
        return label_ok(rest);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy { allow_insecure: false };
    const DEV: Policy = Policy { allow_insecure: true };

    #[test]
    fn google_hosts_are_accepted() {
        for url in [
            "https://sts.googleapis.com/v1/token",
            "https://sts.mtls.googleapis.com/v1/token",
            "https://us-east1.sts.googleapis.com/v1/token",
            "https://sts.us-east1.googleapis.com/v1/token",
            "https://us-east1-sts.googleapis.com/v1/token",
            "https://sts-xyz123.p.googleapis.com/v1/token",
        ] {
            assert!(check(STRICT, Service::Sts, "token_url", url).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_hosts_and_plain_http_are_refused() {
        for url in [
            "http://sts.googleapis.com/v1/token",
            "https://sts.googleapis.com.evil.com/v1/token",
            "https://evilsts.googleapis.com/v1/token",
            "https://iamcredentials.googleapis.com/v1/token",
            "https://127.0.0.1:8080/v1/token",
            "https://sts.evil.com/v1/token",
            "https://a.b.sts.googleapis.com/v1/token",
        ] {
            let e = check(STRICT, Service::Sts, "token_url", url).unwrap_err();
            assert!(e.contains("token_url"), "{url}: {e}");
        }
    }

    #[test]
    fn another_universe_is_honoured_only_when_configured() {
        let url = "https://sts.example-universe.net/v1/token";
        assert!(check(STRICT, Service::Sts, "token_url", url).is_err());
        assert!(check_in(STRICT, Service::Sts, "token_url", url, "example-universe.net").is_ok());
    }

    #[test]
    fn development_switch_allows_loopback_http_only_for_http_schemes() {
        assert!(check(DEV, Service::Sts, "token_url", "http://127.0.0.1:9/v1/token").is_ok());
        assert!(check(DEV, Service::Sts, "token_url", "file:///etc/passwd").is_err());
    }
}
