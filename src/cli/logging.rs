//! Logs through `tracing`: readable lines on a terminal, JSON lines otherwise (CloudWatch
//! and other collectors parse them). `AURORA2BQ_LOG` sets the filter (default `info`),
//! `AURORA2BQ_LOG_FORMAT=json|text` overrides the choice.
//!
//! Every JSON line carries the run id and the version, so one run's lines can be found
//! among many pods'. A field named `json` holding a JSON object is spread into the line
//! (the run summary uses it to put its tables and metrics at the top level).

use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether logs are JSON lines (decided once, at start-up).
static JSON: OnceLock<bool> = OnceLock::new();

pub fn is_json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

pub fn init(run_id: &str) {
    let filter = EnvFilter::try_from_env("AURORA2BQ_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,tonic=warn"));
    let json = match std::env::var("AURORA2BQ_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let _ = JSON.set(json);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.event_format(JsonLine { run_id: run_id.to_owned() }).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// One JSON object per event: time, level, target, run id, version, then the event's fields.
struct JsonLine {
    run_id: String,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(chrono::Utc::now().to_rfc3339()));
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("target".into(), Value::String(event.metadata().target().to_owned()));
        line.insert("run_id".into(), Value::String(self.run_id.clone()));
        line.insert("version".into(), Value::String(crate::VERSION.to_owned()));
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        for (k, v) in fields.0 {
            match (k.as_str(), v) {
                ("json", Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(obj)) => line.extend(obj),
                    _ => {
                        line.insert(k, Value::String(text));
                    }
                },
                (_, v) => {
                    line.insert(k, v);
                }
            }
        }
        writeln!(w, "{}", Value::Object(line))
    }
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}
