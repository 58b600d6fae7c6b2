// Which build of Cairn's compute engine (encoder, WebGPU) this browser runs.
// Two builds of one crate: cairn_compute (wasm SIMD, simd128: every current
// browser) and cairn_compute_relaxed (simd128 + relaxed SIMD, whose integer dot
// product i32x4.relaxed_dot_i8x16_i7x16_add_s speeds up the int8 kernels).
// Feature detection validates a tiny module that uses the instructions: no
// code runs, nothing is fetched. Browsers without wasm SIMD get null (the
// assistant then matches by words only).

/** A module with one function () -> v128 whose body is `code`: valid only where its instructions are. */
function probe(...code) {
  const body = [0 /* no locals */, ...code, 0x0b /* end */];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, //       types: () -> v128
    0x03, 0x02, 0x01, 0x00, //                         functions: one, of type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // code
  ]);
}
const V128_ZERO = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
const SIMD = probe(...V128_ZERO);
const RELAXED = probe(...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x93, 0x02); // i32x4.relaxed_dot_i8x16_i7x16_add_s

const valid = (bytes) => {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
};

/**
 * The compute build for this browser: `{name, features}` where `name` is the
 * wasm-bindgen output name ("cairn_compute_relaxed" or "cairn_compute"), or
 * null without wasm SIMD.
 */
export function computeBuild() {
  if (typeof WebAssembly !== "object" || !valid(SIMD)) return null;
  return valid(RELAXED) ? { name: "cairn_compute_relaxed", features: "simd128+relaxed-simd" } : { name: "cairn_compute", features: "simd128" };
}
