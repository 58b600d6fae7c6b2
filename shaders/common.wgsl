// Shared by every Cairn kernel: prepended to each shader's source at pipeline
// creation (WGSL has no #include). Kept free of bindings so any kernel may use it.

// How a weight matrix is stored on the GPU (see src/backend/gpu/weights.rs).
const FORMAT_F32: u32 = 0u;  // one f32 per u32 word (bit pattern)
const FORMAT_Q8: u32 = 1u;   // four int8 codes per word, lowest byte first
const FORMAT_Q4: u32 = 2u;   // eight int4 codes (value + 8) per word, lowest nibble first

// Per-dispatch sizes shared by the encoder's kernels, written once per batch.
struct Dims {
    tokens: u32,  // rows of the token-major buffers in this batch
    seqs: u32,    // sequences in this batch
    pad0: u32,
    pad1: u32,
}

// Four consecutive values of a weight row, starting at value 4 * group.
// `word` holds them for q8; for q4 it holds eight values, of which `group`
// selects the low or high half.
fn decode_q8(word: u32) -> vec4<f32> {
    let w = vec4<i32>(i32(word << 24u), i32(word << 16u), i32(word << 8u), i32(word)) >> vec4<u32>(24u);
    return vec4<f32>(w);
}

fn decode_q4(word: u32, high: bool) -> vec4<f32> {
    let half = select(word & 0xffffu, word >> 16u, high);
    let n = (vec4<u32>(half) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(0xfu);
    return vec4<f32>(vec4<i32>(n) - vec4<i32>(8));
}

// erf to within 1.5e-7 absolute (Abramowitz and Stegun 7.1.26); WGSL has no erf.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-a * a));
}

// BERT's exact GELU: x * 0.5 * (1 + erf(x / sqrt 2)).
fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}

// Scratch for workgroup reductions; kernels use the first workgroup-size entries.
const REDUCE_MAX: u32 = 256u;
var<workgroup> reduce_scratch: array<f32, REDUCE_MAX>;

// Sum of `v` over the first `size` invocations (a power of two, the workgroup
// size); every invocation gets the total. Call from uniform control flow.
fn workgroup_sum(v: f32, lid: u32, size: u32) -> f32 {
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var stride = size / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            reduce_scratch[lid] = reduce_scratch[lid] + reduce_scratch[lid + stride];
        }
        workgroupBarrier();
    }
    let total = reduce_scratch[0];
    workgroupBarrier();
    return total;
}

// Maximum of `v` over the first `size` invocations, as workgroup_sum.
fn workgroup_max(v: f32, lid: u32, size: u32) -> f32 {
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var stride = size / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            reduce_scratch[lid] = max(reduce_scratch[lid], reduce_scratch[lid + stride]);
        }
        workgroupBarrier();
    }
    let total = reduce_scratch[0];
    workgroupBarrier();
    return total;
}
