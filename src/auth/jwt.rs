//! Reads the claims of a JWT without verifying it: for diagnostics only (what issuer,
//! audience and subject the pod's token carries, and when it expires). Google verifies.

use base64::Engine as _;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// `aud` may be a string or an array; IRSA tokens carry an array.
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    /// `kubernetes.io.namespace`, when present.
    pub namespace: Option<String>,
}

/// Decodes the payload of a compact JWT. Errors say what is wrong, never the token.
pub fn claims(token: &str) -> Result<Claims, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("not a JWT: expected 3 dot-separated parts, found {}", parts.len()));
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| "not a JWT: the payload is not base64url".to_string())?;
    let v: Value = serde_json::from_slice(&payload).map_err(|_| "not a JWT: the payload is not JSON".to_string())?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let aud = match v.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    Ok(Claims {
        iss: s("iss"),
        sub: s("sub"),
        aud,
        exp: v.get("exp").and_then(Value::as_i64),
        iat: v.get("iat").and_then(Value::as_i64),
        namespace: v.get("kubernetes.io").and_then(|k| k.get("namespace")).and_then(Value::as_str).map(str::to_owned),
    })
}

/// `system:serviceaccount:NS:KSA` → (NS, KSA).
pub fn k8s_subject(sub: &str) -> Option<(&str, &str)> {
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    rest.split_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", e.encode(r#"{"alg":"RS256"}"#), e.encode(payload))
    }

    #[test]
    fn reads_irsa_claims_with_array_audience() {
        let t = jwt(
            r#"{"iss":"https://oidc.eks.us-east-1.amazonaws.com/id/ABC","sub":"system:serviceaccount:analytics:bq-reader","aud":["sts.amazonaws.com"],"exp":100,"iat":50,"kubernetes.io":{"namespace":"analytics"}}"#,
        );
        let c = claims(&t).unwrap();
        assert_eq!(c.aud, vec!["sts.amazonaws.com"]);
        assert_eq!(c.exp, Some(100));
        assert_eq!(c.namespace.as_deref(), Some("analytics"));
        assert_eq!(k8s_subject(c.sub.as_deref().unwrap()), Some(("analytics", "bq-reader")));
    }

    #[test]
    fn rejects_what_is_not_a_jwt_without_echoing_it() {
        let e = claims("secret-opaque-token").unwrap_err();
        assert!(!e.contains("secret-opaque-token"));
        assert!(claims("a.!!!.c").is_err());
    }
}
