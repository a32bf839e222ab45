//! Logs through `tracing`: readable lines on a terminal, JSON lines otherwise (CloudWatch
//! and other collectors parse them). `AURORA2BQ_LOG` sets the filter (default `info`),
//! `AURORA2BQ_LOG_FORMAT=json|text` overrides the choice.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("AURORA2BQ_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,tonic=warn"));
    let json = match std::env::var("AURORA2BQ_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.compact().try_init()
    };
}
