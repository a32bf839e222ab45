//! The container's termination message: Kubernetes shows the file's text in `kubectl
//! describe pod` and in the Job's status, so a failed CronJob says why without its logs.

/// Where Kubernetes reads it (the pod's `terminationMessagePath`); `AURORA2BQ_TERMINATION_LOG`
/// overrides it.
const DEFAULT_PATH: &str = "/dev/termination-log";

/// Kubernetes keeps at most 4096 bytes of it.
const MAX_BYTES: usize = 4096;

/// Writes `message` where Kubernetes looks, if that file is there (outside a pod it is not,
/// and nothing is written).
pub fn write(message: &str) {
    let path = std::env::var_os("AURORA2BQ_TERMINATION_LOG").unwrap_or_else(|| DEFAULT_PATH.into());
    let path = std::path::Path::new(&path);
    if !path.exists() {
        return;
    }
    let text = if message.len() > MAX_BYTES { &message[..message.floor_char_boundary(MAX_BYTES)] } else { message };
    if let Err(e) = std::fs::write(path, text) {
        tracing::debug!(error = %e, path = %path.display(), "no termination message written");
    }
}
