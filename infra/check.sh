#!/usr/bin/env bash
# The deployment's gates (called by `make test`): TypeScript type check, the CDK unit tests,
# `cdk synth` of every deployment offline with cdk-nag's AwsSolutions pack (an unacknowledged
# finding fails the synthesis), cfn-lint and checkov on every synthesized template.
# Exits non-zero when any gate finds something; runs every gate it can before saying so.
#
# Installs what it needs on a fresh machine: the npm packages from package-lock.json (from the npm
# cache when it has them, `npm ci --offline`, else from the registry), cfn-lint and checkov pinned
# in infra/requirements-check.txt into their own venv, infra/.venv (checkov pins older boto3,
# botocore and networkx than the local world's moto in .venv; kept apart so neither breaks the other).
# Needs no AWS account, credentials or network beyond the package registries.
set -uo pipefail
INFRA="$(cd "$(dirname "$0")" && pwd)"
cd "$INFRA"
log() { echo "infra-check: $*" >&2; }
die() { log "$*"; exit 1; }

# ------------------------------------------------------------------ installs
command -v node >/dev/null && command -v npm >/dev/null || {
  log "installing Node.js and npm from Debian"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; } >&2 \
    || die "node and npm are needed (Node 20 or later)"
}
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node 20 or later is needed, found $(node --version)"

stamp=node_modules/.norris-package-lock.json
if ! cmp -s package-lock.json "$stamp"; then
  log "installing npm packages (package-lock.json)"
  npm ci --offline --no-audit --no-fund --loglevel=error >&2 || {
    log "the npm cache lacks some packages; installing from the registry"
    npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
  }
  cp package-lock.json "$stamp"
fi

venv="$INFRA/.venv"
pystamp="$venv/.norris-requirements-check.txt"
if [ ! -x "$venv/bin/checkov" ] || ! cmp -s requirements-check.txt "$pystamp"; then
  command -v python3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2; }
  log "installing cfn-lint and checkov (requirements-check.txt) into infra/.venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2 \
    || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2 && python3 -m venv "$venv" >&2; } \
    || die "cannot create $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements-check.txt >&2 || die "pip install failed"
  cp requirements-check.txt "$pystamp"
fi

# ------------------------------------------------------------------ offline, quiet, deterministic
# The gates never talk to AWS: no credentials, no endpoint (make test's local world sets moto's),
# no instance metadata; the CDK CLI keeps its state inside the repo and does not phone home.
unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION \
  AWS_DEFAULT_REGION CDK_DEFAULT_ACCOUNT CDK_DEFAULT_REGION
export AWS_EC2_METADATA_DISABLED=true
export CDK_HOME="$INFRA/.cdk-home" CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true
mkdir -p "$CDK_HOME"
bin="$INFRA/node_modules/.bin"

# ------------------------------------------------------------------ gates
failed=()
passed=()
gate() {
  local name="$1"; shift
  local t0=$SECONDS
  log "── $name"
  if "$@"; then passed+=("$name"); log "   $name: ok ($((SECONDS - t0)) s)"
  else failed+=("$name"); log "   $name: FAILED ($((SECONDS - t0)) s)"; fi
}

synth() {
  rm -rf cdk.out
  # Placeholder code: the gates check the infrastructure, not the Rust build (make package).
  "$bin/cdk" synth --quiet --no-notices -c norris:code=placeholder -o cdk.out
}
templates() { ls cdk.out/*.template.json; }
cfnlint() { "$venv/bin/cfn-lint" --config-file .cfnlintrc.yaml -- $(templates); }
checkov() {
  local args=()
  for t in $(templates); do args+=(--file "$t"); done
  "$venv/bin/checkov" --config-file .checkov.yaml "${args[@]}"
}

start=$SECONDS
gate "tsc --noEmit" "$bin/tsc" --noEmit -p .
gate "jest (template assertions, cdk-nag acknowledgements)" "$bin/jest" --ci --silent
gate "cdk synth (all deployments, cdk-nag AwsSolutions)" synth
# The scanners run on whatever templates this synthesis wrote (it starts from an empty cdk.out), even
# when cdk-nag failed it, so one run reports every gate's findings.
if [ -n "$(ls cdk.out/*.template.json 2>/dev/null)" ]; then
  gate "cfn-lint" cfnlint
  gate "checkov" checkov
else
  failed+=("cfn-lint (no templates)" "checkov (no templates)")
fi

log "gates took $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
echo "infra: all ${#passed[@]} gates passed (${passed[*]})"
