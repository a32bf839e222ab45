//! The deployment files: every Kubernetes manifest parses into the API types with no field
//! left over (so a misspelt key fails here, not at `kubectl apply`), the pieces reference
//! each other consistently, the shipped configs parse with aurora2bq's own parsers, and
//! the Dockerfile is well formed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s")
}

/// Parses YAML into `T` and checks that serializing `T` gives back every field that was
/// written: the API types ignore unknown keys, so a typo would otherwise pass silently.
fn parse_strict<T: DeserializeOwned + Serialize>(file: &Path) -> T {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let raw: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let typed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let back = serde_json::to_value(&typed).unwrap();
    let mut lost = Vec::new();
    missing_fields(&raw, &back, String::new(), &mut lost);
    assert!(lost.is_empty(), "{}: unknown or misplaced fields: {lost:?}", file.display());
    typed
}

fn missing_fields(written: &Value, kept: &Value, path: String, out: &mut Vec<String>) {
    match (written, kept) {
        (Value::Object(w), Value::Object(k)) => {
            for (key, v) in w {
                match k.get(key) {
                    None => out.push(format!("{path}.{key}")),
                    Some(kv) => missing_fields(v, kv, format!("{path}.{key}"), out),
                }
            }
        }
        (Value::Array(w), Value::Array(k)) => {
            for (i, (a, b)) in w.iter().zip(k).enumerate() {
                missing_fields(a, b, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: String,
    #[serde(default)]
    labels: Vec<Value>,
    resources: Vec<String>,
    config_map_generator: Vec<Generator>,
    secret_generator: Vec<Generator>,
    #[serde(default)]
    images: Vec<BTreeMap<String, String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Generator {
    name: String,
    files: Vec<String>,
}

#[test]
fn kustomization_resources_and_generators_exist_and_fit_together() {
    let k: Kustomization = parse_strict(&k8s_dir().join("kustomization.yaml"));
    assert_eq!((k.api_version.as_str(), k.kind.as_str()), ("kustomize.config.k8s.io/v1beta1", "Kustomization"));
    for r in &k.resources {
        assert!(k8s_dir().join(r).is_file(), "resource {r} is missing");
    }
    for g in k.config_map_generator.iter().chain(&k.secret_generator) {
        for f in &g.files {
            assert!(k8s_dir().join(f).is_file(), "generator file {f} is missing");
        }
    }

    let sa: ServiceAccount = parse_strict(&k8s_dir().join("serviceaccount.yaml"));
    let sa_name = sa.metadata.name.clone().unwrap();
    let role =
        sa.metadata.annotations.as_ref().and_then(|a| a.get("eks.amazonaws.com/role-arn")).expect("IRSA annotation");
    assert!(role.starts_with("arn:aws:iam::"), "{role}");

    let cj: CronJob = parse_strict(&k8s_dir().join("cronjob.yaml"));
    let spec = cj.spec.as_ref().unwrap();
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job = spec.job_template.spec.as_ref().unwrap();
    assert!(job.backoff_limit.is_some_and(|b| (0..=5).contains(&b)), "bounded backoffLimit");
    assert!(job.active_deadline_seconds.is_some_and(|s| s > 0), "activeDeadlineSeconds");
    // The Job fails at once on the exit codes a retry cannot fix, and retries the others.
    let rules = job.pod_failure_policy.as_ref().expect("a podFailurePolicy").rules.clone();
    let fail_on: Vec<i32> = rules
        .iter()
        .filter(|r| r.action == "FailJob")
        .filter_map(|r| r.on_exit_codes.as_ref())
        .filter(|c| c.operator == "In")
        .flat_map(|c| c.values.clone())
        .collect();
    use aurora2bq::cli::exit;
    assert_eq!(fail_on, [exit::TABLE_FAILED as i32, exit::SETUP_FAILED as i32], "FailJob exit codes");
    for retried in [exit::TRANSIENT, exit::STOPPED] {
        assert!(!fail_on.contains(&(retried as i32)), "exit code {retried} is retried");
    }
    assert!(
        rules.iter().any(
            |r| r.action == "Ignore" && r.on_pod_conditions.iter().flatten().any(|c| c.type_ == "DisruptionTarget")
        ),
        "an evicted pod does not count against backoffLimit"
    );
    let pod = job.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(sa_name.as_str()));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let c = &pod.containers[0];
    let env: BTreeMap<_, _> = c.env.iter().flatten().map(|e| (e.name.clone(), e.value.clone())).collect();
    let cred_path =
        env.get("GOOGLE_APPLICATION_CREDENTIALS").cloned().flatten().expect("GOOGLE_APPLICATION_CREDENTIALS");
    let args = c.args.clone().unwrap_or_default();
    let config_path = args.iter().skip_while(|a| *a != "--config").nth(1).expect("--config in args").clone();

    // Each mounted file comes from a generator of this kustomization.
    let volumes = pod.volumes.clone().unwrap_or_default();
    let mount_of = |path: &str| -> (String, String) {
        let dir = Path::new(path).parent().unwrap().to_str().unwrap().to_owned();
        let file = Path::new(path).file_name().unwrap().to_str().unwrap().to_owned();
        let m = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == dir)
            .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
        (m.name.clone(), file)
    };
    let (cfg_vol, cfg_file) = mount_of(&config_path);
    let cm = volumes
        .iter()
        .find(|v| v.name == cfg_vol)
        .and_then(|v| v.config_map.clone())
        .expect("config volume is a ConfigMap");
    let generator = k.config_map_generator.iter().find(|g| g.name == cm.name).expect("ConfigMap from the generator");
    assert!(generator.files.contains(&cfg_file));
    let (cred_vol, cred_file) = mount_of(&cred_path);
    let secret = volumes
        .iter()
        .find(|v| v.name == cred_vol)
        .and_then(|v| v.secret.clone())
        .expect("credential volume is a Secret");
    let generator = k
        .secret_generator
        .iter()
        .find(|g| Some(&g.name) == secret.secret_name.as_ref())
        .expect("Secret from the generator");
    assert!(generator.files.contains(&cred_file));

    // The shipped files parse with aurora2bq's own parsers, strictly (Google hosts only).
    let cfg = aurora2bq::config::load(&k8s_dir().join(&cfg_file)).expect("k8s/config.toml");
    match &cfg.source.url {
        aurora2bq::config::UrlFrom::Env(name) => assert!(env.contains_key(name), "{name} is not set in the CronJob"),
        other => panic!("{other:?}"),
    }
    let creds = aurora2bq::auth::credentials::load(&k8s_dir().join(&cred_file)).expect("credential-config.json");
    let policy = aurora2bq::trust::EndpointPolicy::strict();
    aurora2bq::auth::external::ExternalAccount::new(
        creds,
        &policy,
        reqwest::Client::new(),
        std::sync::Arc::new(aurora2bq::auth::clock::SystemClock),
    )
    .map(|_| ())
    .expect("the credential config uses Google's endpoints");
}

#[test]
fn a_misspelt_field_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(k8s_dir().join("cronjob.yaml"))
        .unwrap()
        .replace("concurrencyPolicy", "concurencyPolicy");
    let path = dir.path().join("cronjob.yaml");
    std::fs::write(&path, text).unwrap();
    let r = std::panic::catch_unwind(|| parse_strict::<CronJob>(&path));
    assert!(r.is_err(), "a misspelt key must fail");
}

/// A small Dockerfile reader: known instructions, named stages, COPY --from naming an
/// earlier stage, a non-root final user, and exec-form ENTRYPOINT/CMD.
#[test]
fn dockerfile_is_well_formed() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    const KNOWN: &[&str] = &[
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    ];
    let mut stages: Vec<String> = Vec::new();
    let mut user = None;
    let mut entrypoint = None;
    let mut built_binary = false;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut copied: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (instr, rest) = line.split_once(' ').unwrap_or((line, ""));
        assert!(KNOWN.contains(&instr), "unknown instruction {instr}");
        match instr {
            "FROM" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                match parts.as_slice() {
                    [_image, as_kw, name] if as_kw.eq_ignore_ascii_case("AS") => stages.push(name.to_string()),
                    [_image] => stages.push(String::new()),
                    _ => panic!("bad FROM: {line}"),
                }
                user = None;
            }
            "COPY" => {
                if let Some(from) = rest.strip_prefix("--from=") {
                    let stage = from.split_whitespace().next().unwrap();
                    assert!(
                        stages[..stages.len() - 1].iter().any(|s| s == stage),
                        "COPY --from={stage}: no such earlier stage"
                    );
                    assert!(rest.contains("/target/release/aurora2bq"), "copies the release binary");
                } else {
                    let parts: Vec<&str> = rest.split_whitespace().collect();
                    for src in &parts[..parts.len() - 1] {
                        assert!(root.join(src).exists(), "COPY {src}: not in the repository");
                        copied.push(src.trim_end_matches('/').to_owned());
                    }
                }
            }
            "RUN" if rest.contains("cargo build") => {
                assert!(rest.contains("--release") && rest.contains("--locked"), "{line}");
                built_binary = true;
            }
            "USER" => user = Some(rest.to_owned()),
            "ENTRYPOINT" => entrypoint = Some(serde_json::from_str::<Vec<String>>(rest).expect("exec-form ENTRYPOINT")),
            "CMD" => {
                serde_json::from_str::<Vec<String>>(rest).expect("exec-form CMD");
            }
            _ => {}
        }
    }
    assert!(stages.len() >= 2, "multi-stage");
    assert!(built_binary);
    let user = user.expect("the final stage sets USER");
    assert!(!user.starts_with("root") && !user.starts_with('0'), "non-root user, got {user}");
    assert_eq!(entrypoint.unwrap(), vec!["/usr/local/bin/aurora2bq".to_string()]);
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock").is_file(), "--locked needs Cargo.lock");
    // What the build reads is in the image's build stage.
    let mut needed: Vec<String> = ["Cargo.toml", "Cargo.lock", "build.rs", "src", "testing"].map(String::from).to_vec();
    needed.extend(included_dirs(&root.join("src")));
    for needed in &needed {
        assert!(copied.iter().any(|c| c == needed), "the build stage copies {needed}: {copied:?}");
    }
}

/// The top-level folders of the repository that `include_bytes!`/`include_str!` in `dir`
/// read at compile time (e.g. `certs` for the RDS CA bundle): the image's build needs them.
fn included_dirs(dir: &Path) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(included_dirs(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for macro_name in ["include_bytes!(\"", "include_str!(\""] {
            for (i, _) in text.match_indices(macro_name) {
                let rest = &text[i + macro_name.len()..];
                let rel = &rest[..rest.find('"').unwrap()];
                let file = path.parent().unwrap().join(rel).canonicalize().expect("an included file exists");
                let top = file.strip_prefix(&root).expect("included from the repository").components().next().unwrap();
                out.push(top.as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// The image, rustup and Cargo build with one Rust: the Dockerfile's `rust:X.Y` build stage,
/// rust-toolchain.toml's channel and the workspace's `rust-version`.
#[test]
fn one_rust_version_everywhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let docker = read("Dockerfile");
    let image = docker
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|rest| rest.split(['-', ' ']).next())
        .expect("a rust: build stage");
    let toolchain: toml::Value = toml::from_str(&read("rust-toolchain.toml")).unwrap();
    let channel = toolchain["toolchain"]["channel"].as_str().unwrap();
    let cargo: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let msrv = cargo["workspace"]["package"]["rust-version"].as_str().unwrap();
    assert!(channel.starts_with(&format!("{image}.")) || channel == image, "Dockerfile {image}, toolchain {channel}");
    assert_eq!(image, msrv, "Dockerfile rust:{image} but rust-version = {msrv}");
}

/// Every command's `--help` shows examples, `--version` names the commit, and the shell
/// completions know the commands and their flags.
#[test]
fn the_command_line_explains_itself() {
    let bin = env!("CARGO_BIN_EXE_aurora2bq");
    let out = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(o.status.success(), "aurora2bq {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let help = out(&["--help"]);
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 7, "{help}");
    for c in &commands {
        assert!(out(&[c, "--help"]).contains("Examples:"), "aurora2bq {c} --help shows examples");
    }
    for sub in ["show", "reset"] {
        assert!(out(&["state", sub, "--help"]).contains("Examples:"), "state {sub} --help");
    }
    let version = out(&["--version"]);
    assert!(version.starts_with(&format!("aurora2bq {} (commit ", env!("CARGO_PKG_VERSION"))), "{version}");
    let git = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output();
    if let Some(g) = git.ok().filter(|g| g.status.success()) {
        let head = String::from_utf8_lossy(&g.stdout).trim().to_owned();
        assert!(version.contains(&head), "{version} names HEAD {head}");
    }
    let bash = out(&["completions", "bash"]);
    for word in ["run", "doctor", "state", "--full-refresh", "--exclude-tables"] {
        assert!(bash.contains(word), "bash completion knows {word}");
    }
    assert!(out(&["completions", "zsh"]).contains("#compdef aurora2bq"));
    assert!(out(&["completions", "fish"]).contains("complete -c aurora2bq"));
}

/// (vCPU, the GB a Fargate pod of that size may have): EKS Fargate adds 256 MB for its own
/// components (kubelet, kube-proxy, containerd) to the pod's memory request and runs it at
/// the size that rounds up to, so request + 256 MB should already be one.
const FARGATE: &[(f64, &[f64])] = &[
    (0.25, &[0.5, 1.0, 2.0]),
    (0.5, &[1.0, 2.0, 3.0, 4.0]),
    (1.0, &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    (2.0, &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]),
    (4.0, &[8.0, 12.0, 16.0, 20.0, 24.0, 28.0, 30.0]),
];

fn cpu(q: &str) -> f64 {
    q.strip_suffix('m').map_or_else(|| q.parse().unwrap(), |m| m.parse::<f64>().unwrap() / 1000.0)
}

/// Fargate's "GB" are GiB (2 GB = 2048 MiB).
fn gigabytes(q: &str) -> f64 {
    let (n, unit) = q.split_at(q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len()));
    let n: f64 = n.parse().unwrap();
    match unit {
        "Gi" => n,
        "Mi" => n / 1024.0,
        other => panic!("memory unit {other}: write Mi or Gi"),
    }
}

/// The CronJob fits a Fargate size exactly, and every object it makes carries the
/// app.kubernetes.io labels (checked on the rendered kustomization where kubectl is present).
#[test]
fn fargate_sized_and_labelled_everywhere() {
    let cj: CronJob = parse_strict(&k8s_dir().join("cronjob.yaml"));
    let pod = cj.spec.unwrap().job_template.spec.unwrap().template.spec.unwrap();
    let res = pod.containers[0].resources.clone().expect("resources");
    let (req, lim) = (res.requests.expect("requests"), res.limits.expect("limits"));
    assert_eq!(req, lim, "requests equal limits");
    let (c, m) = (cpu(&req["cpu"].0), gigabytes(&req["memory"].0));
    let sizes = FARGATE.iter().find(|(v, _)| *v == c).map(|(_, gb)| *gb).unwrap_or_else(|| panic!("{c} vCPU"));
    let pod_gb = m + 0.25;
    assert!(
        sizes.iter().any(|gb| (gb - pod_gb).abs() < 0.001),
        "{m:.3} GB requested + 0.25 GB for Fargate's components is not a Fargate size for {c} vCPU"
    );

    let k: Kustomization = parse_strict(&k8s_dir().join("kustomization.yaml"));
    let wanted = ["app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component"];
    let labels = k.labels.iter().find(|l| l["includeTemplates"] == true).expect("labels with includeTemplates");
    for w in wanted {
        assert!(labels["pairs"][w].is_string(), "{w} in the kustomization's labels");
    }

    let Ok(rendered) = std::process::Command::new("kubectl").args(["kustomize"]).arg(k8s_dir()).output() else {
        eprintln!("kubectl is not installed: the rendered manifests are not checked here");
        return;
    };
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let text = String::from_utf8(rendered.stdout).unwrap();
    let mut kinds = Vec::new();
    for doc in text.split("\n---\n") {
        let v: Value = serde_norway::from_str(doc).unwrap();
        let kind = v["kind"].as_str().unwrap().to_owned();
        let mut places = vec![("metadata", &v["metadata"]["labels"])];
        if kind == "CronJob" {
            let cj: CronJob = serde_norway::from_str(doc).expect("the rendered CronJob parses");
            assert!(cj.spec.unwrap().job_template.spec.unwrap().pod_failure_policy.is_some());
            places.push(("jobTemplate", &v["spec"]["jobTemplate"]["metadata"]["labels"]));
            places.push(("pod template", &v["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]));
        }
        for (place, l) in places {
            for w in wanted {
                assert_eq!(
                    l[w].as_str(),
                    Some(if w.ends_with("component") { "loader" } else { "aurora2bq" }),
                    "{kind} {place}: {w}"
                );
            }
        }
        kinds.push(kind);
    }
    kinds.sort();
    assert_eq!(kinds, ["ConfigMap", "CronJob", "Secret", "ServiceAccount"]);
}

/// The Fargate logging snippet parses into Kubernetes types and sends each JSON line alone
/// (what CloudWatch needs to read the summary's embedded metrics).
#[test]
fn the_fargate_logging_snippet_is_well_formed() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let text = std::fs::read_to_string(k8s_dir().join("aws-observability/logging.yaml")).unwrap();
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(docs.len(), 2);
    let ns: Namespace = serde_norway::from_str(docs[0]).unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("aws-observability"));
    assert_eq!(ns.metadata.labels.unwrap()["aws-observability"], "enabled");
    let cm: ConfigMap = serde_norway::from_str(docs[1]).unwrap();
    assert_eq!(
        (cm.metadata.name.as_deref(), cm.metadata.namespace.as_deref()),
        (Some("aws-logging"), Some("aws-observability"))
    );
    let data = cm.data.unwrap();
    let output = &data["output.conf"];
    assert!(output.contains("Name cloudwatch_logs") && output.contains("log_key log"), "{output}");
    assert!(data["filters.conf"].contains("Parser crio") && data["parsers.conf"].contains("Name crio"));
}

/// The Indexed Job component: one number of shards in its three places, the per-index
/// retry and failure fields a Job accepts, and (where kubectl is present) an overlay using it
/// renders into a CronJob whose Job is Indexed.
#[test]
fn the_indexed_job_component_splits_the_run_consistently() {
    let dir = k8s_dir().join("components/indexed-job");
    let component: Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap()).unwrap();
    assert_eq!(component["kind"], "Component");
    let ops: Vec<Value> = serde_norway::from_str(component["patches"][0]["patch"].as_str().unwrap()).unwrap();
    let at = |path: &str| ops.iter().find(|o| o["path"] == path).map(|o| o["value"].clone());
    let completions = at("/spec/jobTemplate/spec/completions").expect("completions");
    assert_eq!(at("/spec/jobTemplate/spec/parallelism"), Some(completions.clone()));
    let env = at("/spec/jobTemplate/spec/template/spec/containers/0/env/-").expect("the shard count");
    assert_eq!(env["name"], "AURORA2BQ_SHARDS");
    assert_eq!(
        env["value"].as_str().map(str::to_owned),
        Some(completions.to_string()),
        "AURORA2BQ_SHARDS = completions"
    );
    let group = ops.iter().find(|o| o["value"]["name"] == "AURORA2BQ_SHARD_GROUP").expect("the shard group");
    assert_eq!(
        group["value"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.labels['batch.kubernetes.io/job-name']",
        "the group is the Job's name: the same for every index, new for every run"
    );

    // Render an overlay of a copy of k8s/ with the component (kustomize wants relative paths).
    let tmp = tempfile::tempdir().unwrap();
    let copy = std::process::Command::new("cp").arg("-r").arg(k8s_dir()).arg(tmp.path().join("k8s")).status().unwrap();
    assert!(copy.success());
    std::fs::create_dir(tmp.path().join("ov")).unwrap();
    std::fs::write(
        tmp.path().join("ov/kustomization.yaml"),
        "resources:\n  - ../k8s\ncomponents:\n  - ../k8s/components/indexed-job\n",
    )
    .unwrap();
    let Ok(rendered) = std::process::Command::new("kubectl").arg("kustomize").arg(tmp.path().join("ov")).output()
    else {
        eprintln!("kubectl is not installed: the component's rendering is not checked here");
        return;
    };
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let text = String::from_utf8(rendered.stdout).unwrap();
    let doc = text.split("\n---\n").find(|d| d.contains("\nkind: CronJob\n")).expect("a CronJob");
    let cj: CronJob = serde_norway::from_str(doc).expect("the rendered CronJob parses");
    let job = cj.spec.unwrap().job_template.spec.unwrap();
    assert_eq!(job.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(job.completions, completions.as_i64().map(|c| c as i32));
    assert_eq!(job.parallelism, job.completions);
    assert_eq!(job.backoff_limit, None, "backoffLimitPerIndex replaces backoffLimit");
    assert_eq!(job.backoff_limit_per_index, Some(2));
    let rules = job.pod_failure_policy.unwrap().rules;
    assert_eq!(rules[0].action, "FailIndex");
    let env = job.template.spec.unwrap().containers[0].env.clone().unwrap_or_default();
    let group = env.iter().find(|e| e.name == "AURORA2BQ_SHARD_GROUP").expect("the group in the rendered Job");
    let field = group.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).map(|f| f.field_path.as_str());
    assert_eq!(field, Some("metadata.labels['batch.kubernetes.io/job-name']"));
}
