#!/usr/bin/env bash
# From a fresh clone to the running demo forum: installs what is missing, fetches
# the model, builds the CLI, the wasm engine and the sample index, then serves
# the demo on http://127.0.0.1:${PORT:-8080}/ until you press Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec target/release/cairn serve --dir build/demo --port "${PORT:-8080}"
