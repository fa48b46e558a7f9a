#!/usr/bin/env bash
# The project's test command: installs the test peers (a virtual environment of PyPI clients, vcsim),
# then runs every test of the workspace (all of them, so one failure does not hide the next). Extra
# arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
exec cargo test --workspace --locked --no-fail-fast "$@"
