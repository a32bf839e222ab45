//! `google-emulator`: runs the emulator as a process for the demo. It writes the pod's
//! token file (and rewrites it before expiry, as the kubelet does), optionally puts
//! authenticating gates in front of bqemulator, and prints one JSON line when ready.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use aurora2bq_google_emulator::{Emulator, EmulatorConfig, TokenSpec};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// JSON file with the emulated project (EmulatorConfig).
    #[arg(long)]
    config: PathBuf,
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to keep the pod's projected token.
    #[arg(long)]
    token_file: PathBuf,
    #[arg(long, default_value = "analytics")]
    namespace: String,
    #[arg(long, default_value = "aurora2bq")]
    service_account: String,
    #[arg(long, default_value = "sts.amazonaws.com")]
    token_audience: String,
    /// Token lifetime; the file is rewritten at 80% of it.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: i64,
    /// PORT=UPSTREAM: an authenticating REST gate.
    #[arg(long)]
    gate_rest: Option<String>,
    /// PORT=UPSTREAM: an authenticating gRPC gate.
    #[arg(long)]
    gate_grpc: Option<String>,
    /// Also serve a Storage Write API that accepts appends and discards them (a null
    /// sink for benchmarks) on this port.
    #[arg(long)]
    null_storage_write: Option<u16>,
    /// REST_PORT,GRPC_PORT,MILLISECONDS: also serve a BigQuery REST API and a discarding
    /// Storage Write API that answer every call after that latency and check no SQL (for
    /// benchmarks of how a run overlaps its calls).
    #[arg(long)]
    latency_bigquery: Option<String>,
    /// JSON file with an RdsFrontConfig: also serve an emulated Aurora endpoint with IAM
    /// database authentication in front of a real database.
    #[arg(long)]
    rds_front: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    rds_port: u16,
    /// Where to write the CA that signed the RDS front's certificate (the client's ca_file).
    #[arg(long)]
    rds_ca: Option<PathBuf>,
}

fn gate_arg(s: &str) -> anyhow::Result<(u16, String)> {
    let (port, upstream) = s.split_once('=').context("expected PORT=UPSTREAM")?;
    Ok((port.parse()?, upstream.to_owned()))
}

fn latency_arg(s: &str) -> anyhow::Result<(u16, u16, Duration)> {
    let parts: Vec<&str> = s.split(',').collect();
    let [rest, grpc, ms] = parts[..] else { anyhow::bail!("expected REST_PORT,GRPC_PORT,MILLISECONDS") };
    Ok((rest.parse()?, grpc.parse()?, Duration::from_millis(ms.parse()?)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: EmulatorConfig = serde_json::from_str(&std::fs::read_to_string(&args.config)?)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let mut emu = Emulator::start(config, args.port).await?;
    let mut gates = serde_json::Map::new();
    for (name, arg, grpc) in [("rest", &args.gate_rest, false), ("grpc", &args.gate_grpc, true)] {
        if let Some(a) = arg {
            let (port, upstream) = gate_arg(a)?;
            let addr = emu.start_gate(port, &upstream, grpc).await?;
            gates.insert(name.into(), format!("http://{addr}").into());
        }
    }
    let _null = match args.null_storage_write {
        Some(port) => {
            let w = aurora2bq_google_emulator::storage_write::FakeStorageWrite::start(true, port).await?;
            gates.insert("null_storage_write".into(), format!("http://{}", w.addr).into());
            Some(w)
        }
        None => None,
    };
    let _latency = match &args.latency_bigquery {
        Some(spec) => {
            let (rest, grpc, latency) = latency_arg(spec)?;
            let w = aurora2bq_google_emulator::storage_write::FakeStorageWrite::start_with_latency(true, grpc, latency)
                .await?;
            let rest = emu.start_latency_bigquery(rest, latency).await?;
            gates.insert("latency_rest".into(), format!("http://{rest}").into());
            gates.insert("latency_grpc".into(), format!("http://{}", w.addr).into());
            Some(w)
        }
        None => None,
    };
    let _rds = match &args.rds_front {
        Some(path) => {
            let cfg: aurora2bq_google_emulator::RdsFrontConfig = serde_json::from_str(&std::fs::read_to_string(path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            let front = emu.start_rds_front(cfg, args.rds_port).await?;
            if let Some(ca) = &args.rds_ca {
                std::fs::write(ca, &front.ca_pem)?;
            }
            gates.insert("rds_front".into(), front.addr.to_string().into());
            gates.insert("aws_sts".into(), emu.aws_sts_url().into());
            Some(front)
        }
        None => None,
    };
    let spec = TokenSpec {
        namespace: args.namespace.clone(),
        service_account: args.service_account.clone(),
        audience: vec![args.token_audience.clone()],
        lifetime_secs: args.token_lifetime,
        ..TokenSpec::default()
    };
    write_token(&args.token_file, &emu.mint(&spec))?;
    println!(
        "{}",
        serde_json::json!({"ready": true, "base_url": emu.base_url(), "issuer": emu.issuer(),
            "sts_url": emu.sts_url(), "gates": gates})
    );
    let rotate = Duration::from_secs((args.token_lifetime.max(10) as u64) * 8 / 10);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(rotate) => write_token(&args.token_file, &emu.mint(&spec))?,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

/// Replaces the file atomically, as the kubelet's symlink swap does.
fn write_token(path: &PathBuf, token: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, token)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
