//! A wrapper for values that must never reach a log, an error message or `Debug` output:
//! database URLs with passwords, subject tokens, access tokens.

use std::fmt;
use std::path::Path;

/// A token file larger than this is not a JWT; stop before reading a runaway file.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// A projected token file's text: a regular file of at most [`MAX_TOKEN_BYTES`], or what is
/// wrong with it, as a problem for the caller to pair with its fix. The one reader of token
/// files, for Google's subject token and AWS's web identity alike.
pub fn read_token_file(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("token file {shown} does not exist")
        } else {
            format!("cannot read token file {shown}: {e}")
        }
    })?;
    // A FIFO would block the read forever and a device (/dev/zero) reports no length:
    // only a regular file (through the kubelet's symlinks) is a token file.
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file (a device, FIFO or socket)" };
        return Err(format!("token file {shown} is {what}"));
    }
    let too_large = |len: u64| format!("token file {shown} is {len} bytes or more, too large for a token");
    if meta.len() > MAX_TOKEN_BYTES {
        return Err(too_large(meta.len()));
    }
    // The file may grow between the check and the read: read at most the cap.
    let cant_read = |e: std::io::Error| format!("cannot read token file {shown}: {e}");
    let file = std::fs::File::open(path).map_err(cant_read)?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_BYTES + 1).read_to_end(&mut bytes).map_err(cant_read)?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| format!("token file {shown} is not text, so not a token"))
}

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
