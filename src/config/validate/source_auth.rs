//! `source.auth` and the AWS keys that go with `rds_iam`.

use super::super::raw::RawSource;
use super::super::{ConfigError, IamConfig, SourceAuth};
use super::{Ctx, non_empty_path};

pub(super) fn auth(cx: &Ctx, raw: &RawSource, allow_insecure: bool) -> Result<SourceAuth, ConfigError> {
    let aws_keys = [
        ("source.aws_region", &raw.aws_region),
        ("source.aws_role_arn", &raw.aws_role_arn),
        ("source.aws_token_file", &raw.aws_token_file),
        ("source.aws_sts_url", &raw.aws_sts_url),
    ];
    let iam = match &raw.auth {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "password" => false,
            "rds_iam" => true,
            other => {
                return Err(cx.err(
                    v.span(),
                    "source.auth",
                    format!(
                        "{other:?} is not one of \"password\" (in the URL) or \"rds_iam\" (RDS IAM authentication)"
                    ),
                ));
            }
        },
    };
    if !iam {
        if let Some((key, Some(v))) = aws_keys.iter().find(|(_, v)| v.is_some()) {
            return Err(cx.err(v.span(), key, "only applies with auth = \"rds_iam\"; set that, or remove this key"));
        }
        return Ok(SourceAuth::Password);
    }
    if let Some(r) = &raw.aws_region
        && !crate::trust::is_aws_region(r.get_ref())
    {
        return Err(cx.err(r.span(), "source.aws_region", "is not an AWS region such as eu-west-1"));
    }
    if let Some(a) = &raw.aws_role_arn {
        let parts: Vec<&str> = a.get_ref().split(':').collect();
        let ok = parts.len() == 6 && parts[0] == "arn" && parts[2] == "iam" && parts[5].starts_with("role/");
        if !ok {
            return Err(cx.err(
                a.span(),
                "source.aws_role_arn",
                "is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
            ));
        }
    }
    let sts_url = match &raw.aws_sts_url {
        None => None,
        Some(u) => Some(
            crate::trust::check_aws_sts(allow_insecure, "source.aws_sts_url", u.get_ref())
                .map_err(|m| cx.err(u.span(), "source.aws_sts_url", m))?,
        ),
    };
    Ok(SourceAuth::RdsIam(IamConfig {
        region: raw.aws_region.as_ref().map(|r| r.get_ref().clone()),
        role_arn: raw.aws_role_arn.as_ref().map(|r| r.get_ref().clone()),
        token_file: raw.aws_token_file.as_ref().map(|f| non_empty_path(cx, f, "source.aws_token_file")).transpose()?,
        sts_url,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{SourceAuth, parse};

    fn config(source: &str, google: &str) -> String {
        format!(
            "[source]\nengine = \"postgres\"\nurl_env = \"U\"\n{source}\n[destination]\nproject = \"p\"\ndataset = \"d\"\n\
             [google]\n{google}\n[[tables]]\nsource = \"t\"\n"
        )
    }

    fn error(source: &str, google: &str) -> String {
        parse("c.toml".as_ref(), &config(source, google)).expect_err("refused").to_string()
    }

    #[test]
    fn rds_iam_keys_are_checked_where_they_are_written() {
        let ok = parse("c.toml".as_ref(), &config("auth = \"rds_iam\"\naws_region = \"eu-west-1\"", "")).unwrap();
        assert!(matches!(ok.source.auth, SourceAuth::RdsIam(_)));
        // The web-identity token goes to AWS STS only; loopback only under the development switch.
        let e = error("auth = \"rds_iam\"\naws_sts_url = \"https://sts.amazonaws.com.evil.io/\"", "");
        assert!(e.contains("source.aws_sts_url") && e.contains("line 5"), "{e}");
        let e = error("auth = \"rds_iam\"\naws_sts_url = \"http://127.0.0.1:9/\"", "");
        assert!(e.contains("source.aws_sts_url"), "{e}");
        parse(
            "c.toml".as_ref(),
            &config("auth = \"rds_iam\"\naws_sts_url = \"http://127.0.0.1:9/\"", "allow_insecure_endpoints = true"),
        )
        .expect("loopback with the development switch");
        let e = error("aws_region = \"eu-west-1\"", "");
        assert!(e.contains("only applies with auth = \\\"rds_iam\\\"") || e.contains("only applies with auth"), "{e}");
        let e = error("auth = \"kerberos\"", "");
        assert!(e.contains("source.auth") && e.contains("rds_iam"), "{e}");
        let e = error("auth = \"rds_iam\"\naws_role_arn = \"role/x\"", "");
        assert!(e.contains("source.aws_role_arn"), "{e}");
    }
}
