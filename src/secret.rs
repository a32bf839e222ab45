//! A wrapper for values that must never reach a log, an error message or `Debug` output:
//! database URLs with passwords, subject tokens, access tokens.

use std::fmt;

/// Holds a secret string. `Debug` and `Display` print `[redacted]`; the value is reachable
/// only through [`Secret::expose`], so every place that uses it is easy to audit.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is sent to the party it is meant for.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// `text` with the user-info of every `scheme://user:password@` in it replaced, for messages
/// that quote input (a config line, a library's error) which may hold a connection URL.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // User-info ends at '@' before any '/', whitespace or quote that ends the authority.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'' || c == '>')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("REDACTED");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_wherever_it_is_quoted() {
        for (input, want) in [
            ("url = \"postgres://u:hunter2@db:5432/x\"", "url = \"postgres://REDACTED@db:5432/x\""),
            ("mysql://root:p@ss@h/db and https://ok.example/p", "mysql://REDACTED@h/db and https://ok.example/p"),
            ("no url here", "no url here"),
            ("http://host/path@x", "http://host/path@x"),
        ] {
            assert_eq!(redact_userinfo(input), want, "{input}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("postgres://u:hunter2@db/x");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "postgres://u:hunter2@db/x");
    }
}
