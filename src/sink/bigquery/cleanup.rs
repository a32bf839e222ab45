//! Work a load leaves behind that its table's outcome need not wait for (dropping the
//! staging table), run in the background and waited for once, at the end of the run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

/// How long the end of a run waits for the clean-up still running; what is left then
/// (staging tables) expires on its own.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
pub struct Cleanup(Arc<Mutex<JoinSet<()>>>);

impl Cleanup {
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut set = self.0.lock().expect("cleanup lock");
        // Reap what has finished, so a run of thousands of tables holds no finished tasks.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Waits for every task spawned so far, at most [`SETTLE_LIMIT`].
    pub async fn settle(&self) {
        let mut set = std::mem::take(&mut *self.0.lock().expect("cleanup lock"));
        let all = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(SETTLE_LIMIT, all).await.is_err() {
            tracing::warn!("clean-up still running at the end of the run was left; staging tables expire on their own");
        }
    }
}
