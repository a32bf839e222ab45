//! The generative differential test on both engines (see `draw/mod.rs`). CI runs a fixed
//! budget of draws from fixed seeds; `scripts/fuzz` runs more from a random seed.

use crate::draw;
use crate::draw::types::Eng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_postgres_tables_land_exactly() {
    draw::run_budget(Eng::Pg, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_mysql_tables_land_exactly() {
    draw::run_budget(Eng::My, 2_000).await;
}
