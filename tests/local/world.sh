#!/usr/bin/env bash
# The local world: moto server (AWS APIs), MariaDB and PostgreSQL, all on 127.0.0.1 only.
#
#   world.sh up            start what is missing (installing it on a fresh machine), create tables
#   world.sh down          stop what `up` started (servers that were already running are left alone)
#   world.sh env           print the environment variables that point a shell at the world
#   world.sh run -- CMD    up, run CMD with that environment, down (also on failure or Ctrl-C)
#
# State lives under target/local/: pid files, logs, and `started` (what to stop on down).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf '[world] %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ours_on() { [ -f "$ROOT/target/local/world-$1/moto.pid" ] && kill -0 "$(cat "$ROOT/target/local/world-$1/moto.pid")" 2>/dev/null; }

MOTO_PORT="${NORRIS_MOTO_PORT:-5077}"
# A `run` (make test, make demo) with no port asked for takes the next free one when another
# checkout's world holds the default: a test run must not depend on what else is up.
if [ -z "${NORRIS_MOTO_PORT:-}" ] && [ "${1:-}" = run ]; then
  while port_open "$MOTO_PORT" && ! ours_on "$MOTO_PORT"; do
    MOTO_PORT=$((MOTO_PORT + 1))
    [ "$MOTO_PORT" -le 5099 ] || { log "no free port for moto in 5077-5099; set NORRIS_MOTO_PORT"; exit 1; }
  done
fi
STATE="$ROOT/target/local/world-$MOTO_PORT"
VENV="$ROOT/.venv"
PREFIX="${NORRIS_TABLE_PREFIX:-norris}"
mkdir -p "$STATE"

# Waits for a condition, polling with backoff, at most $2 seconds.
wait_for() {
  local what="$1" limit="$2"; shift 2
  local waited=0 step=0.1
  until "$@"; do
    if awk "BEGIN{exit !($waited >= $limit)}"; then log "gave up waiting for $what after ${limit}s"; return 1; fi
    sleep "$step"; waited=$(awk "BEGIN{print $waited + $step}"); step=$(awk "BEGIN{s=$step*2; print (s>1)?1:s}")
  done
}

mark_started() { grep -qx "$1" "$STATE/started" 2>/dev/null || echo "$1" >> "$STATE/started"; }

apt_ready=""
apt_install() {
  if [ -z "$apt_ready" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_ready=1
  fi
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# One venv for the local world's tools and the PySpark jobs; reinstalled when a requirements file changes.
ensure_venv() {
  local stamp="$VENV/.norris-requirements" reqs=("$ROOT/tests/local/requirements.txt" "$ROOT/livy-jobs/requirements.txt")
  if [ -x "$VENV/bin/python" ] && cat "${reqs[@]}" | cmp -s - "$stamp"; then return; fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  log "creating the Python venv (.venv) from tests/local/requirements.txt and livy-jobs/requirements.txt"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2 || { apt_install python3-venv; python3 -m venv "$VENV" >&2; }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "${reqs[0]}" -r "${reqs[1]}" >&2
  cat "${reqs[@]}" > "$stamp"
}

# Java for Spark, and the JDBC drivers Spark reads MariaDB and writes PostgreSQL with.
ensure_spark_deps() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  local missing=()
  [ -f /usr/share/java/mariadb-java-client.jar ] || missing+=(libmariadb-java)
  [ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

moto_up() {
  if [ -f "$STATE/moto.pid" ] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null && port_open "$MOTO_PORT"; then
    log "moto server already running on 127.0.0.1:$MOTO_PORT"; return
  fi
  if port_open "$MOTO_PORT"; then
    log "port $MOTO_PORT is taken by something else; set NORRIS_MOTO_PORT"; exit 1
  fi
  ensure_venv
  log "starting moto server on 127.0.0.1:$MOTO_PORT"
  # One request at a time: moto's threaded server can let two conditional writes both pass.
  nohup "$VENV/bin/python" "$ROOT/tests/local/moto_serial.py" -H 127.0.0.1 -p "$MOTO_PORT" > "$STATE/moto.log" 2>&1 &
  echo $! > "$STATE/moto.pid"
  mark_started moto
  wait_for "moto server" 60 port_open "$MOTO_PORT"
}

mariadb_up() {
  if port_open 3306; then log "MariaDB already listening on 127.0.0.1:3306: reusing it"; else
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
    log "starting MariaDB (127.0.0.1:3306)"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --bind-address=127.0.0.1 --port=3306
    mark_started mariadb
    wait_for "MariaDB" 60 port_open 3306
  fi
  # A password user for JDBC (root uses socket auth), owning the databases named norris_*.
  mariadb -uroot <<'SQL' >&2
CREATE DATABASE IF NOT EXISTS norris_demo;
CREATE USER IF NOT EXISTS 'norris'@'127.0.0.1' IDENTIFIED BY 'norris-local';
CREATE USER IF NOT EXISTS 'norris'@'localhost' IDENTIFIED BY 'norris-local';
GRANT ALL ON `norris\_%`.* TO 'norris'@'127.0.0.1';
GRANT ALL ON `norris\_%`.* TO 'norris'@'localhost';
SQL
}

postgres_up() {
  if port_open 5432; then log "PostgreSQL already listening on 127.0.0.1:5432: reusing it"; else
    ls /etc/postgresql/*/main >/dev/null 2>&1 || apt_install postgresql
    local version; version="$(ls /etc/postgresql | sort -V | tail -n1)"
    log "starting PostgreSQL $version (127.0.0.1:5432)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    mark_started "postgres:$version"
    wait_for "PostgreSQL" 60 port_open 5432
  fi
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='norris'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE norris LOGIN PASSWORD 'norris-local'\"" >&2
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='norris_sink'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE DATABASE norris_sink OWNER norris\"" >&2
}

print_env() {
  cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_ACCESS_KEY_ID=local-world
export AWS_SECRET_ACCESS_KEY=local-world
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export NORRIS_TABLE_PREFIX=$PREFIX
ENV
}

tables_up() {
  log "creating the norris tables (prefix $PREFIX)"
  ( eval "$(print_env)"; cd "$ROOT" && cargo run -q -p norris-cli -- tables create >&2 )
}

up() {
  ensure_venv
  ensure_spark_deps
  moto_up
  mariadb_up
  postgres_up
  tables_up
  log "local world is up; point a shell at it with: eval \"\$(bash tests/local/world.sh env)\""
}

# Stops what `up` started, except what is listed in $1 (a file: what was running before a `run`).
down() {
  local keep="${1:-/dev/null}"
  [ -f "$STATE/started" ] || { log "nothing to stop"; return 0; }
  local remaining=""
  while read -r what; do
    if grep -qx "$what" "$keep" 2>/dev/null; then remaining+="$what"$'\n'; continue; fi
    case "$what" in
      moto)
        if [ -f "$STATE/moto.pid" ]; then kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true; rm -f "$STATE/moto.pid"; fi
        log "stopped moto server" ;;
      mariadb)
        start-stop-daemon --stop --oknodo --retry 30 --exec /usr/sbin/mariadbd >/dev/null; log "stopped MariaDB" ;;
      postgres:*)
        pg_ctlcluster --skip-systemctl-redirect "${what#postgres:}" main stop || true; log "stopped PostgreSQL" ;;
    esac
  done < "$STATE/started"
  printf '%s' "$remaining" > "$STATE/started"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) print_env ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    cp "$STATE/started" "$STATE/started.before-run" 2>/dev/null || : > "$STATE/started.before-run"
    trap 'down "$STATE/started.before-run"' EXIT
    trap 'exit 130' INT TERM
    up
    eval "$(print_env)"
    "$@" ;;
  *) echo "usage: $0 up|down|env|run -- CMD" >&2; exit 2 ;;
esac
