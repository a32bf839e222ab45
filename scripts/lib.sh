# Shared set-up for scripts/demo, scripts/test and scripts/bench: install what is missing,
# start what is not running, wait until it answers, and stop on exit what this script
# started (and only that). Sourced, not run.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aurora2bq/target}
BQE_VERSION=1.4.0
BQE_VENV=${BQE_VENV:-$HOME/.cache/bqemulator-$BQE_VERSION}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aurora2bq.XXXXXX")
STARTED_PIDS=()
STOP_COMMANDS=()

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    for pid in "${STARTED_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    for cmd in "${STOP_COMMANDS[@]:-}"; do
        [ -n "$cmd" ] && { log "stopping: $cmd"; eval "$cmd" >/dev/null 2>&1 || true; }
    done
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root to run: $*"; fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    if [ $APT_UPDATED = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Waits up to $2 seconds for command $1 to succeed.
wait_for() {
    local what=$1 secs=$2; shift 2
    for _ in $(seq 1 $((secs * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "$what did not become ready within ${secs}s"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres.
ensure_postgres() {
    if ! command -v psql >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql postgresql-client
    fi
    # The TLS test verifies the server against a CA bundle.
    [ -f /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates
    if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
        local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
        log "starting PostgreSQL $ver"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
        STOP_COMMANDS+=("pg_ctlcluster --skip-systemctl-redirect $ver main stop")
        wait_for "PostgreSQL" 60 pg_isready -h 127.0.0.1 -p 5432 -q
    fi
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        # A fresh Debian cluster asks for a password on TCP; tests and the demo connect as
        # postgres without one, on loopback only.
        local hba; hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
        log "allowing trust auth for postgres on 127.0.0.1 in $hba"
        as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main reload
        wait_for "PostgreSQL auth" 20 psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1'
    fi
}

# MariaDB on 127.0.0.1:3306, root without a password (stands in for Aurora MySQL).
ensure_mariadb() {
    if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
        apt_install mariadb-server mariadb-client
    fi
    if ! mariadb -h 127.0.0.1 -P 3306 -uroot -e 'select 1' >/dev/null 2>&1; then
        log "starting MariaDB"
        as_root mkdir -p /run/mysqld
        as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
        as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        STOP_COMMANDS+=("start-stop-daemon --stop --oknodo --exec /usr/sbin/mariadbd")
        wait_for "MariaDB" 60 mariadb -h 127.0.0.1 -P 3306 -uroot -e 'select 1'
    fi
}

# bqemulator in a cached venv, pinned to a set that starts offline (bqemulator's differences from BigQuery: docs/architecture.md, "Testing").
ensure_bqemulator() {
    if [ ! -x "$BQE_VENV/bin/bqemulator" ] || [ ! -f "$BQE_VENV/.complete" ]; then
        log "installing bqemulator $BQE_VERSION into $BQE_VENV (about a minute, once)"
        python3 -m venv --clear "$BQE_VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv --clear "$BQE_VENV"; }
        "$BQE_VENV/bin/pip" install --disable-pip-version-check -q "bqemulator==$BQE_VERSION" \
            'duckdb==1.5.5' 'duckdb-extensions==1.5.5' 'duckdb-extension-spatial==1.5.5' \
            'duckdb-extension-avro==1.5.5' 'numpy<3'
        mkdir -p "$BQE_VENV/home"
        HOME="$BQE_VENV/home" "$BQE_VENV/bin/python" -c \
            "from duckdb_extensions import import_extension as i; i('spatial'); i('avro')"
        touch "$BQE_VENV/.complete"
    fi
}

# Starts bqemulator on free ports; sets BQ_REST and BQ_GRPC.
start_bqemulator() {
    ensure_bqemulator
    local rest grpc; rest=$(free_port); grpc=$(free_port)
    log "starting bqemulator (REST $rest, gRPC $grpc)"
    HOME="$BQE_VENV/home" "$BQE_VENV/bin/bqemulator" start --rest-host 127.0.0.1 --rest-port "$rest" \
        --grpc-host 127.0.0.1 --grpc-port "$grpc" --project test-project --ephemeral \
        --log-level warning >"$WORK/bqemulator.log" 2>&1 &
    STARTED_PIDS+=($!)
    BQ_REST=http://127.0.0.1:$rest
    BQ_GRPC=http://127.0.0.1:$grpc
    wait_for "bqemulator (log: $WORK/bqemulator.log)" 90 python3 -c \
        "import urllib.request; urllib.request.urlopen('$BQ_REST/readyz', timeout=2)"
}

# A real Prometheus Pushgateway (Debian's package) on a free port; sets PUSHGATEWAY.
start_pushgateway() {
    command -v prometheus-pushgateway >/dev/null || apt_install prometheus-pushgateway
    local port; port=$(free_port)
    log "starting prometheus-pushgateway ($port)"
    prometheus-pushgateway --web.listen-address="127.0.0.1:$port" >"$WORK/pushgateway.log" 2>&1 &
    STARTED_PIDS+=($!)
    PUSHGATEWAY=http://127.0.0.1:$port
    wait_for "pushgateway (log: $WORK/pushgateway.log)" 30 python3 -c \
        "import urllib.request; urllib.request.urlopen('$PUSHGATEWAY/-/ready', timeout=2)"
}

# The Google side as an administrator would set it up: a pool "eks" with an OIDC provider
# for the cluster's issuer (here the emulator's), and a service account the pod's KSA
# analytics/aurora2bq may impersonate. Starts the emulator with authenticating gates in
# front of bqemulator, writes the pod token ($WORK/token) and the credential config
# ($WORK/credential-config.json). Needs start_bqemulator and cargo_build first.
# EMULATOR_ARGS (an array) adds arguments, e.g. the benchmark's latency BigQuery.
start_google_emulator() {
    local sa=aurora2bq@test-project.iam.gserviceaccount.com bin=$CARGO_TARGET_DIR/${PROFILE:-debug}
    local emu_port; emu_port=$(free_port); REST_GATE=$(free_port); GRPC_GATE=$(free_port); NULL_WRITE=$(free_port)
    RDS_PORT=$(free_port); AWS_STS_URL="http://127.0.0.1:$emu_port/aws-sts/"
    # An emulated Aurora endpoint with IAM authentication, in front of the local PostgreSQL:
    # the database user logs in with RDS tokens the pod's AWS role signs, no password.
    cat >"$WORK/rds-front.json" <<JSON
{"engine": "postgres", "upstream": "127.0.0.1:5432", "region": "eu-west-1",
 "resource_id": "cluster-DEMO0RESOURCE0ID", "hostname": "localhost", "iam_users": []}
JSON
    cat >"$WORK/google-project.json" <<JSON
{
  "project_number": "123456789012",
  "providers": [{
    "pool": "eks", "provider": "eks-oidc",
    "allowed_audiences": ["sts.amazonaws.com"],
    "attribute_mapping": {
      "google.subject": "assertion.sub",
      "attribute.ksa_name": "assertion.sub.extract('system:serviceaccount:{ksa_name}')"
    }
  }],
  "service_accounts": [{
    "email": "$sa",
    "workload_identity_users": ["principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/attribute.ksa_name/analytics:aurora2bq"]
  }],
  "aws": $(aws_account_json "$emu_port")
}
JSON
    log "starting the Google emulator (issuer, STS, IAM) on $emu_port, gates to bqemulator on $REST_GATE and $GRPC_GATE"
    "$bin/google-emulator" --config "$WORK/google-project.json" --port "$emu_port" \
        --token-file "$WORK/token" --namespace analytics --service-account aurora2bq \
        --gate-rest "$REST_GATE=$BQ_REST" --gate-grpc "$GRPC_GATE=$BQ_GRPC" --null-storage-write "$NULL_WRITE" \
        --rds-front "$WORK/rds-front.json" --rds-port "$RDS_PORT" --rds-ca "$WORK/rds-ca.pem" \
        ${EMULATOR_ARGS[@]+"${EMULATOR_ARGS[@]}"} >"$WORK/emulator.out" 2>"$WORK/emulator.log" &
    STARTED_PIDS+=($!)
    wait_for "the Google emulator" 30 grep -q '"ready":true' "$WORK/emulator.out"
    log "writing the credential config (as gcloud iam workload-identity-pools create-cred-config would)"
    "$bin/aurora2bq" cred-config --project-number 123456789012 --pool eks --provider eks-oidc \
        --service-account "$sa" --token-path "$WORK/token" \
        --sts-url "http://127.0.0.1:$emu_port/v1/token" --iam-url "http://127.0.0.1:$emu_port" \
        --output "$WORK/credential-config.json"
}

# The emulated AWS account: the cluster's issuer as an IAM OIDC provider, and the role
# aurora2bq the pod's ServiceAccount may assume, allowed rds-db:connect as user aurora2bq.
aws_account_json() {
    local issuer="127.0.0.1:$1/oidc/id/EMULATED0CLUSTER"
    cat <<JSON
{
    "account": "111122223333",
    "oidc_providers": [{"client_ids": ["sts.amazonaws.com"]}],
    "roles": [{
      "name": "aurora2bq",
      "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/$issuer"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"$issuer:sub": "system:serviceaccount:analytics:aurora2bq",
                                       "$issuer:aud": "sts.amazonaws.com"}}}]},
      "policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds-db:connect",
        "Resource": "arn:aws:rds-db:eu-west-1:111122223333:dbuser:cluster-DEMO0RESOURCE0ID/aurora2bq"}]}]
    }]
  }
JSON
}

# The [google] lines of an aurora2bq config for the emulated chain.
google_config_lines() {
    cat <<TOML
credentials = "$WORK/credential-config.json"
# Local stand-ins; in production these are left out (Google's HTTPS endpoints).
bigquery_url = "http://127.0.0.1:$REST_GATE"
storage_write_url = "http://127.0.0.1:$GRPC_GATE"
allow_insecure_endpoints = true
TOML
}

# Creates a BigQuery dataset in bqemulator (what `bq mk --dataset` does for real).
create_dataset() {
    log "creating the BigQuery dataset $1"
    python3 - "$BQ_REST" "$1" <<'PY'
import json, sys, urllib.request
body = json.dumps({"datasetReference": {"projectId": "test-project", "datasetId": sys.argv[2]}, "location": "US"}).encode()
req = urllib.request.Request(sys.argv[1] + "/bigquery/v2/projects/test-project/datasets", body, {"content-type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=30)
except urllib.error.HTTPError as e:
    if e.code != 409:
        raise
PY
}

# rust-toolchain.toml pins the toolchain the Dockerfile builds with. Where rustup lacks that
# name but its stable toolchain is that very version (a machine without the internet), the
# stable one is linked under the pinned name instead of downloaded.
ensure_toolchain() {
    command -v rustup >/dev/null 2>&1 || return 0
    local want
    want=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")
    if ! rustup toolchain list | grep -q "^$want"; then
        if rustc +stable --version 2>/dev/null | grep -q "^rustc $want "; then
            log "linking the installed stable toolchain as $want"
            rustup toolchain link "$want" "$(rustc +stable --print sysroot)"
        fi
    fi
}

# cargo-deny checks licences, bans (duplicate versions) and sources against deny.toml. It is
# built once into the cache (a few minutes) and reused.
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
    local root=$HOME/.cache/aurora2bq/tools
    CARGO_DENY=$root/bin/cargo-deny
    if ! "$CARGO_DENY" --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
        log "installing cargo-deny $CARGO_DENY_VERSION into $root (a few minutes, once)"
        cargo install --locked --quiet --root "$root" --version "$CARGO_DENY_VERSION" cargo-deny
    fi
}

cargo_build() {
    ensure_toolchain
    log "building (cargo target dir: $CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --quiet --workspace --bins "$@")
}
