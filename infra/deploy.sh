#!/usr/bin/env bash
# Deploys norris to the AWS account and region of the current credentials:
#   bash infra/deploy.sh                      every deployment of infra/deployments.json
#   bash infra/deploy.sh norris-dev           only these deployments (by name)
#   bash infra/deploy.sh norris-dev -- --require-approval never    extra arguments for `cdk deploy`
# It builds the four Lambda zips (infra/package.sh), installs the CDK app's pinned packages,
# bootstraps the account/region for CDK if needed (idempotent), and deploys the stacks.
set -euo pipefail
INFRA="$(cd "$(dirname "$0")" && pwd)"
names=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do names+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
command -v aws >/dev/null || echo "deploy: note: the aws CLI is not installed (not needed by cdk, handy for the next steps)" >&2

bash "$INFRA/package.sh"

cd "$INFRA"
export CDK_HOME="$INFRA/.cdk-home" CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true
mkdir -p "$CDK_HOME"
if ! cmp -s package-lock.json node_modules/.norris-package-lock.json; then
  npm ci --offline --no-audit --no-fund --loglevel=error || npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.norris-package-lock.json
fi
cdk=node_modules/.bin/cdk
stacks=()
if [ ${#names[@]} -eq 0 ]; then stacks=(--all); else for n in "${names[@]}"; do stacks+=("Norris-$n"); done; fi
"$cdk" bootstrap --no-notices
"$cdk" deploy --no-notices "${stacks[@]}" "$@"
