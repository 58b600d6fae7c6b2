#!/usr/bin/env bash
# Every test: unit and integration tests (golden model outputs, importer, index,
# CLI) and the browser end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build.sh
export CAIRN_MODEL="$PWD/build/model"
# The GPU parity tests run on lavapipe (mesa-vulkan-drivers, installed by setup.sh):
# a missing adapter there is a failure, not a skip.
export CAIRN_REQUIRE_GPU=1
printf '\033[1m==> %s\033[0m\n' "cargo test" >&2
cargo test --release
printf '\033[1m==> %s\033[0m\n' "browser end-to-end tests" >&2
node --test --test-concurrency=1 tests/e2e/
