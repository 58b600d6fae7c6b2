#!/usr/bin/env bash
# Every test: unit and integration tests (golden model outputs, importer, index,
# CLI) and the browser end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
# Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on every GPU start
# without one (harmless, but it reads like a failure): give them a private one.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi
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
# The widgets again in a browser with WebGPU (SwiftShader): each surface must
# work there too, and the assistant must run its encoder on the GPU.
printf '\033[1m==> %s\033[0m\n' "browser widget tests with WebGPU" >&2
CAIRN_E2E_WEBGPU=1 node --test --test-concurrency=1 tests/e2e/widgets.test.mjs
