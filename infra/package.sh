#!/usr/bin/env bash
# Builds the four Lambda binaries for the provided.al2023 runtime (x86_64) as
# target/lambda/<function>/bootstrap.zip, the artifacts the CDK stack deploys.
#
# Reproducible: cargo-lambda and zig pinned in infra/requirements-package.txt, Cargo.lock
# honoured (--locked), the release profile in Cargo.toml (stripped, thin LTO). One release build of
# the four binaries together (several minutes on 2 cores).
#
# x86_64 rather than arm64: the arm64 build needs rustup's aarch64 standard library, which a fresh
# machine may not be able to download; the x86_64 one links with zig against an old glibc, which
# provided.al2023 has.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
REQS="$ROOT/infra/requirements-package.txt"
FUNCTIONS=(extraction-scheduler cluster-health-watcher rotation-handler job-migrator)
log() { echo "package: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  command -v python3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv; }
  log "creating $VENV"
  python3 -m venv "$VENV" || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && python3 -m venv "$VENV"; }
fi
stamp="$VENV/.norris-package-requirements"
if ! cmp -s "$REQS" "$stamp" || [ ! -x "$VENV/bin/cargo-lambda" ]; then
  log "installing cargo-lambda and zig from $REQS"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$stamp"
fi
# cargo-lambda finds zig through the venv's python (python -m ziglang).
export PATH="$VENV/bin:$PATH"

args=()
for f in "${FUNCTIONS[@]}"; do args+=(--package "$f"); done
log "building ${FUNCTIONS[*]} (release, x86_64, provided.al2023)"
cargo lambda build --release --x86-64 --locked --output-format zip "${args[@]}"

for f in "${FUNCTIONS[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  [ -s "$zip" ] || { log "missing $zip"; exit 1; }
  printf '%-60s %8s bytes (%s)\n' "$zip" "$(stat -c %s "$zip")" "$(du -h "$zip" | cut -f1)"
done
