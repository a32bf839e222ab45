//! Just enough of IAM policy evaluation for the documents aurora2bq's set-up writes: Allow
//! and Deny statements, `Action`/`Resource`/`Principal.Federated` with `*` and `?` wildcards,
//! and the `StringEquals` and `StringLike` condition operators. An explicit Deny wins; no
//! matching Allow is an implicit deny.

use std::collections::HashMap;

use serde_json::Value;

/// One request to authorize.
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: Option<&'a str>,
    pub federated: Option<&'a str>,
    pub context: &'a HashMap<String, String>,
}

pub fn allows(documents: &[&Value], req: &Request) -> bool {
    let statements: Vec<&Value> = documents
        .iter()
        .flat_map(|d| match &d["Statement"] {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            s @ Value::Object(_) => vec![s],
            _ => Vec::new(),
        })
        .collect();
    let matching = |effect: &str| statements.iter().any(|s| s["Effect"] == effect && matches(s, req));
    !matching("Deny") && matching("Allow")
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn matches(s: &Value, req: &Request) -> bool {
    let actions = strings(&s["Action"]);
    if !actions.iter().any(|a| glob(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase())) {
        return false;
    }
    if let Some(r) = req.resource
        && !strings(&s["Resource"]).iter().any(|p| glob(p, r))
    {
        return false;
    }
    if let Some(f) = req.federated
        && !strings(&s["Principal"]["Federated"]).contains(&f)
    {
        return false;
    }
    let Some(conditions) = s.get("Condition").and_then(Value::as_object) else { return true };
    conditions.iter().all(|(op, pairs)| {
        let Some(pairs) = pairs.as_object() else { return false };
        pairs.iter().all(|(key, wanted)| {
            let Some(have) = req.context.get(key) else { return false };
            let wanted = strings(wanted);
            match op.as_str() {
                "StringEquals" => wanted.contains(&have.as_str()),
                "StringLike" => wanted.iter().any(|w| glob(w, have)),
                _ => false,
            }
        })
    })
}

/// IAM's wildcards: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trust_and_permission_policies_evaluate_as_iam_does() {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/iss"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"iss:sub": "system:serviceaccount:ns:sa", "iss:aud": "sts.amazonaws.com"}}}]});
        let mut ctx = HashMap::new();
        ctx.insert("iss:sub".to_string(), "system:serviceaccount:ns:sa".to_string());
        ctx.insert("iss:aud".to_string(), "sts.amazonaws.com".to_string());
        let req = |ctx| Request {
            action: "sts:AssumeRoleWithWebIdentity",
            resource: None,
            federated: Some("arn:aws:iam::1:oidc-provider/iss"),
            context: ctx,
        };
        assert!(allows(&[&trust], &req(&ctx)));
        let mut other = ctx.clone();
        other.insert("iss:sub".into(), "system:serviceaccount:ns:other".into());
        assert!(!allows(&[&trust], &req(&other)));
        let perm = json!({"Statement": [{"Effect": "Allow", "Action": ["rds-db:connect"],
            "Resource": "arn:aws:rds-db:eu-west-1:1:dbuser:cluster-*/app"}]});
        let empty = HashMap::new();
        let rds = |r| Request { action: "rds-db:connect", resource: Some(r), federated: None, context: &empty };
        assert!(allows(&[&perm], &rds("arn:aws:rds-db:eu-west-1:1:dbuser:cluster-ABC/app")));
        assert!(!allows(&[&perm], &rds("arn:aws:rds-db:eu-west-1:1:dbuser:cluster-ABC/admin")));
        let deny = json!({"Statement": {"Effect": "Deny", "Action": "rds-db:*", "Resource": "*"}});
        assert!(!allows(&[&perm, &deny], &rds("arn:aws:rds-db:eu-west-1:1:dbuser:cluster-ABC/app")));
    }
}
