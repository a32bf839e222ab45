//! `aurora2bq extract`: reads every configured table exactly as a run does (snapshot,
//! COPY, Arrow batches) and discards the batches. Measures the source side alone and
//! checks that every table can be read and mapped, without touching Google.

use std::time::Instant;

use super::exit;
use crate::source::{self, BatchLimits};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: super::tables::ConfigFile,
}

pub async fn extract(a: Args) -> u8 {
    let config = match crate::config::load(&a.file.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aurora2bq: {e}");
            return exit::SETUP_FAILED;
        }
    };
    let limits = BatchLimits { rows: config.run.batch_rows, bytes: config.run.batch_bytes };
    let src = match source::connect(&config.source, limits).await {
        Ok(s) => s,
        Err(e) => {
            super::report("connecting to the source", &e.into());
            return exit::SETUP_FAILED;
        }
    };
    let tables = match source::expand_patterns(&*src, &config.tables).await {
        Ok((tables, notes)) => {
            notes.iter().for_each(|n| tracing::warn!("{n}"));
            tables
        }
        Err(e) => {
            super::report("listing the source's tables", &e.into());
            return exit::SETUP_FAILED;
        }
    };
    let mut failed = false;
    for t in &tables {
        let started = Instant::now();
        let result = async {
            let read = src.open(t, None).await?;
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            let reader = tokio::spawn(read.read_into(tx));
            let (mut batches, mut bytes) = (0u64, 0usize);
            while let Some(b) = rx.recv().await {
                batches += 1;
                bytes += b.get_array_memory_size();
            }
            let stats = reader.await.map_err(|e| anyhow::anyhow!("reader task: {e}"))??;
            Ok::<_, anyhow::Error>((stats, batches, bytes))
        }
        .await;
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok((stats, batches, bytes)) => println!(
                "{}: {} rows in {batches} batches, {} of Arrow, {secs:.2} s, {:.0} rows/s",
                t.source_name(),
                stats.rows,
                crate::pipeline::human_bytes(bytes as u64),
                stats.rows as f64 / secs.max(1e-9)
            ),
            Err(e) => {
                failed = true;
                println!("{}: FAILED: {e:#}", t.source_name());
            }
        }
    }
    if failed { exit::TABLE_FAILED } else { exit::OK }
}
