#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium and saves a PNG: the page as a browser draws it
# (the inline SVG timelines included), to look at after a change to the HTML report.
#
#   scripts/screenshot-report.sh [REPORT_HTML] [OUT_PNG] [HEIGHT]
#
# Needs Debian's `chromium` (apt-get install chromium). The page is opened from the file system:
# the report fetches nothing, and the flags below keep Chromium from reaching out on its own.
# Every scenario is shown open (the report folds passed ones), so that each VM's timeline is in the
# picture: the page drawn is a copy of the report with its <details> open.
set -euo pipefail

report=${1:-results/report.html}
out=${2:-${report%.html}.png}
height=${3:-3000}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$chromium" ]]; then
    echo "screenshot-report: chromium not found; install Debian's chromium package" >&2
    exit 2
fi
if [[ ! -f "$report" ]]; then
    echo "screenshot-report: no report at $report (mtv-tests run writes <results>/report.html)" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
page="$profile/report.html"
sed 's/<details\b/<details open/g' "$report" > "$page"
sandbox=()
# Chromium refuses to start as root with its sandbox.
if [[ $(id -u) -eq 0 ]]; then sandbox=(--no-sandbox); fi
"$chromium" --headless "${sandbox[@]}" --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size="1280,$height" \
    --screenshot="$(realpath -m "$out")" "file://$page" 2>/dev/null
echo "screenshot-report: $out"
