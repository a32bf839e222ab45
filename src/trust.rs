//! Which hosts may receive the pod's subject token or an access token. Credential files are
//! input that could be hostile, so where a secret may go is decided by aurora2bq's own
//! configuration alone: its `google.universe_domain` (default `googleapis.com`) names the
//! only Google universe, and a credential file that names another is refused before any
//! call. Outside the development switch, STS must be a Google STS host and impersonation a
//! Google IAM Credentials host of that universe, both over HTTPS. The development switch
//! adds loopback hosts (the local emulators) and nothing else, so a config written for a
//! laptop cannot send tokens across the network.

use std::net::IpAddr;
use std::sync::Arc;

use url::Url;

pub const DEFAULT_UNIVERSE: &str = "googleapis.com";

#[derive(Debug, Clone)]
pub struct EndpointPolicy {
    /// Development only: also accept http(s) on loopback hosts, e.g. the local emulator.
    pub allow_insecure: bool,
    /// The one Google universe tokens may go to, from aurora2bq's config.
    pub universe: Arc<str>,
}

impl EndpointPolicy {
    pub fn new(allow_insecure: bool, universe: &str) -> Self {
        Self { allow_insecure, universe: universe.into() }
    }

    /// Google's public universe, no development switch.
    pub fn strict() -> Self {
        Self::new(false, DEFAULT_UNIVERSE)
    }

    /// A credential file's `universe_domain` must be ours: Google's libraries refuse a
    /// credential whose universe differs from the client's, before any call.
    pub fn check_universe(&self, file_universe: Option<&str>) -> Result<(), String> {
        let theirs = file_universe.unwrap_or(DEFAULT_UNIVERSE);
        if theirs.eq_ignore_ascii_case(&self.universe) {
            return Ok(());
        }
        Err(format!(
            "universe_domain is {theirs:?}, but aurora2bq is configured for {:?} (google.universe_domain); \
             tokens only go to the universe aurora2bq's own configuration names, never to one a credential \
             file names",
            self.universe
        ))
    }
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

/// `url` parsed, refused if it carries a user name or password (`advice` says what to do
/// instead); returns it with the form of it that messages show.
fn parse_without_userinfo(key: &str, url: &str, advice: &str) -> Result<(Url, String), String> {
    let shown = redact(url);
    let parsed = Url::parse(url).map_err(|e| format!("{key} {shown:?} is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{key} {shown:?} carries a user name or password; {advice}"));
    }
    Ok((parsed, shown))
}

const NO_USERINFO: &str = "tokens are never sent with one";

/// An AWS region's name: lower-case letters, digits and hyphens (`eu-west-1`), so it can be
/// put in a host name safely.
pub fn is_aws_region(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks `url` against the policy; the error says which key and why, with any password
/// in the URL left out.
pub fn check(policy: &EndpointPolicy, service: Service, key: &str, url: &str) -> Result<Url, String> {
    let (parsed, shown) = parse_without_userinfo(key, url, NO_USERINFO)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{key} {shown:?} uses scheme {:?}; use https", parsed.scheme()));
    }
    if policy.allow_insecure && is_loopback(&parsed) {
        return Ok(parsed);
    }
    if parsed.scheme() != "https" {
        return Err(format!(
            "{key} {shown:?} is not HTTPS; only Google endpoints over HTTPS are accepted \
             (allow_insecure_endpoints adds loopback hosts for local development, nothing else)"
        ));
    }
    let host = parsed.host_str().unwrap_or_default();
    if !is_google_host(service.label(), host, &policy.universe) {
        return Err(format!(
            "{key} {shown:?} is not a Google {} endpoint in universe {:?}; tokens are only sent to \
             the universe aurora2bq's configuration names",
            service.label(),
            policy.universe
        ));
    }
    Ok(parsed)
}

/// Where a subject token is fetched from (`credential_source.url`). Nothing of ours is sent
/// there, but plain HTTP would let anyone on the path hand us a token, and a URL from a file
/// must not reach into the network unnoticed: HTTPS, or loopback under the development switch.
pub fn check_fetch(policy: &EndpointPolicy, key: &str, url: &str) -> Result<Url, String> {
    let (parsed, shown) = parse_without_userinfo(key, url, "put credentials in headers")?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if policy.allow_insecure && is_loopback(&parsed) => Ok(parsed),
        "http" => Err(format!(
            "{key} {shown:?} is plain HTTP; only HTTPS is fetched (allow_insecure_endpoints adds loopback \
             hosts for local development)"
        )),
        other => Err(format!("{key} {shown:?} uses scheme {other:?}; use https")),
    }
}

/// Where the AWS web-identity token may go (`source.aws_sts_url`): AWS STS over HTTPS
/// (`sts.amazonaws.com`, `sts[-fips].REGION.amazonaws.com[.cn]`), or loopback under the
/// development switch.
pub fn check_aws_sts(allow_insecure: bool, key: &str, url: &str) -> Result<Url, String> {
    let (parsed, shown) = parse_without_userinfo(key, url, NO_USERINFO)?;
    if allow_insecure && matches!(parsed.scheme(), "http" | "https") && is_loopback(&parsed) {
        return Ok(parsed);
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let aws = host == "sts.amazonaws.com"
        || [".amazonaws.com", ".amazonaws.com.cn"].iter().any(|suffix| {
            host.strip_suffix(suffix)
                .and_then(|h| h.strip_prefix("sts.").or_else(|| h.strip_prefix("sts-fips.")))
                .is_some_and(is_aws_region)
        });
    if parsed.scheme() != "https" || !aws {
        return Err(format!(
            "{key} {shown:?} is not AWS STS over HTTPS; the pod's web-identity token only goes to \
             https://sts.REGION.amazonaws.com (allow_insecure_endpoints adds loopback hosts for local \
             development, nothing else)"
        ));
    }
    Ok(parsed)
}

/// 127.0.0.0/8, ::1 and `localhost`: the development switch reaches no further.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// The URL with its password (and user name) replaced, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("REDACTED");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparsable: keep what cannot hold userinfo.
        Err(_) => match url.split_once('@') {
            Some((_, rest)) => format!("REDACTED@{rest}"),
            None => url.to_owned(),
        },
    }
}

/// `S.googleapis.com`, `*.S.googleapis.com`, `S.*.googleapis.com`, `*-S.googleapis.com`,
/// `S-*.p.googleapis.com`, each optionally with `.mtls` before `googleapis.com` (the
/// patterns Google's libraries once enforced).
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

    fn strict() -> EndpointPolicy {
        EndpointPolicy::strict()
    }
    fn dev() -> EndpointPolicy {
        EndpointPolicy::new(true, DEFAULT_UNIVERSE)
    }

    #[test]
    fn aws_sts_hosts_only_over_https() {
        for ok in [
            "https://sts.amazonaws.com/",
            "https://sts.eu-west-1.amazonaws.com/",
            "https://sts-fips.us-east-1.amazonaws.com/",
            "https://sts.cn-north-1.amazonaws.com.cn/",
        ] {
            assert!(check_aws_sts(false, "k", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sts.amazonaws.com/",
            "https://sts.amazonaws.com.evil.io/",
            "https://evil.io/?sts.amazonaws.com",
            "https://x.sts.eu-west-1.amazonaws.com/",
            "https://u:p@sts.amazonaws.com/",
            "http://127.0.0.1:9/",
        ] {
            assert!(check_aws_sts(false, "k", bad).is_err(), "{bad}");
        }
        assert!(check_aws_sts(true, "k", "http://127.0.0.1:9/").is_ok());
        assert!(check_aws_sts(true, "k", "http://10.0.0.1:9/").is_err());
    }

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
            assert!(check(&strict(), Service::Sts, "token_url", url).is_ok(), "{url}");
            assert!(check(&dev(), Service::Sts, "token_url", url).is_ok(), "{url}");
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
            "https://user:pw@sts.googleapis.com/v1/token",
        ] {
            let e = check(&strict(), Service::Sts, "token_url", url).unwrap_err();
            assert!(e.contains("token_url"), "{url}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn the_universe_comes_from_our_config_only() {
        let url = "https://sts.example-universe.net/v1/token";
        assert!(check(&strict(), Service::Sts, "token_url", url).is_err());
        let ours = EndpointPolicy::new(false, "example-universe.net");
        assert!(check(&ours, Service::Sts, "token_url", url).is_ok());
        assert!(strict().check_universe(None).is_ok());
        assert!(strict().check_universe(Some("googleapis.com")).is_ok());
        let e = strict().check_universe(Some("attacker.example")).unwrap_err();
        assert!(e.contains("attacker.example") && e.contains("google.universe_domain"), "{e}");
        assert!(ours.check_universe(None).is_err());
    }

    #[test]
    fn development_switch_adds_loopback_and_nothing_else() {
        for ok in ["http://127.0.0.1:9/v1/token", "http://127.9.9.9/x", "http://[::1]:9/x", "http://localhost:9/x"] {
            assert!(check(&dev(), Service::Sts, "token_url", ok).is_ok(), "{ok}");
            assert!(check(&strict(), Service::Sts, "token_url", ok).is_err(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/v1/token",
            "https://attacker.example/v1/token",
            "http://169.254.169.254/latest",
            "http://localhost.attacker.example/x",
            "file:///etc/passwd",
        ] {
            assert!(check(&dev(), Service::Sts, "token_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fetched_subject_urls_need_https_or_dev_loopback() {
        assert!(check_fetch(&strict(), "credential_source.url", "https://idp.example/token").is_ok());
        assert!(check_fetch(&strict(), "credential_source.url", "http://169.254.169.254/token").is_err());
        assert!(check_fetch(&dev(), "credential_source.url", "http://169.254.169.254/token").is_err());
        assert!(check_fetch(&dev(), "credential_source.url", "http://127.0.0.1:1/token").is_ok());
        let e = check_fetch(&strict(), "credential_source.url", "https://u:hunter2@idp.example/t").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn redaction_hides_userinfo() {
        assert_eq!(redact("https://u:secret@h.example/p"), "https://REDACTED@h.example/p");
        assert_eq!(redact("https://h.example/p"), "https://h.example/p");
        assert!(!redact("not a url u:secret@x").contains("secret"));
    }
}
