#!/usr/bin/env bash
# Every test: unit and integration tests (golden model outputs, importer, index,
# CLI) and the browser end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
export CAIRN_MODEL="$PWD/build/model"
printf '\033[1m==> %s\033[0m\n' "cargo test" >&2
cargo test --release
printf '\033[1m==> %s\033[0m\n' "browser end-to-end tests" >&2
node --test --test-concurrency=1 tests/e2e/
