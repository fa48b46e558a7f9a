#!/usr/bin/env bash
# Builds vcsim (govmomi's vCenter simulator) from Debian's packages `golang-go` and
# `golang-github-vmware-govmomi-dev` with our own scripts/vcsim/main.go, offline (GOPATH mode over
# /usr/share/gocode), into target/vcsim/vcsim. Skips the build when the binary is newer than main.go
# and the installed govmomi package. Prints where the binary is.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
out="$target/vcsim/vcsim"
main="$root/scripts/vcsim/main.go"
govmomi_list=/var/lib/dpkg/info/golang-github-vmware-govmomi-dev.list

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ]; then
    echo "vcsim needs the Debian packages golang-go and golang-github-vmware-govmomi-dev" \
        "(scripts/install-test-deps.sh installs them)" >&2
    exit 1
fi

if [ -x "$out" ] && [ "$out" -nt "$main" ] && { [ ! -e "$govmomi_list" ] || [ "$out" -nt "$govmomi_list" ]; }; then
    echo "vcsim: $out (up to date)"
    exit 0
fi

mkdir -p "$target/vcsim/gocache" "$target/vcsim/gopath"
started=$(date +%s)
# GOPATH mode: imports resolve under /usr/share/gocode/src; nothing is fetched.
(
    cd "$root/scripts/vcsim"
    GO111MODULE=off \
        GOPATH="$target/vcsim/gopath:/usr/share/gocode" \
        GOCACHE="$target/vcsim/gocache" \
        GOFLAGS= GOPROXY=off CGO_ENABLED=0 \
        go build -o "$out.tmp" .
)
mv -f "$out.tmp" "$out"
echo "vcsim: built $out in $(($(date +%s) - started)) s"
