// Linear layer with a fused epilogue:
//   y[t, o] = epilogue(sum_k x[t, k] * W[o, k] + b[o])
// epilogue: none, GELU, or adding a residual r[t, o].
//
// W is stored in blocks of 32 input values with one scale per (block, output)
// and interleaved so that neighbouring invocations (neighbouring outputs) read
// neighbouring words: word (kb * WORDS_PER_BLOCK + j) * N + o holds the j-th
// word of block kb of row o; scales[kb * N + o] is its scale (1 for f32).
//
// One invocation per output column; a workgroup covers TILE_N outputs of
// TILE_T tokens, so each weight block is decoded once per TILE_T tokens. The
// tokens' slice of x for the current block is staged in workgroup memory.

override K: u32;         // input width
override N: u32;         // output width
override FORMAT: u32;    // FORMAT_F32 | FORMAT_Q8 | FORMAT_Q4
override EPILOGUE: u32;  // EPILOGUE_NONE | EPILOGUE_GELU | EPILOGUE_RESIDUAL

const EPILOGUE_NONE: u32 = 0u;
const EPILOGUE_GELU: u32 = 1u;
const EPILOGUE_RESIDUAL: u32 = 2u;

const TILE_N: u32 = 64u;
const TILE_T: u32 = 8u;
const BLOCK: u32 = 32u;
const GROUPS: u32 = 8u;  // vec4 groups per block

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;           // (tokens, K)
@group(0) @binding(2) var<storage, read> w: array<u32>;           // (K/32, words per block, N)
@group(0) @binding(3) var<storage, read> scales: array<f32>;      // (K/32, N)
@group(0) @binding(4) var<storage, read> bias: array<f32>;        // (N,)
@group(0) @binding(5) var<storage, read> residual: array<f32>;    // (tokens, N), read only for EPILOGUE_RESIDUAL
@group(0) @binding(6) var<storage, read_write> y: array<f32>;     // (tokens, N)

var<workgroup> xs: array<array<vec4<f32>, GROUPS>, TILE_T>;

// Values 4g .. 4g+3 of block kb of row o, before scaling.
fn weight_group(kb: u32, g: u32, o: u32) -> vec4<f32> {
    if (FORMAT == FORMAT_F32) {
        let base = (kb * BLOCK + 4u * g) * N + o;
        return vec4<f32>(bitcast<f32>(w[base]), bitcast<f32>(w[base + N]), bitcast<f32>(w[base + 2u * N]), bitcast<f32>(w[base + 3u * N]));
    }
    if (FORMAT == FORMAT_Q8) {
        return decode_q8(w[(kb * 8u + g) * N + o]);
    }
    return decode_q4(w[(kb * 4u + g / 2u) * N + o], g % 2u == 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = wg.x * TILE_N + lid;
    let t0 = wg.y * TILE_T;
    var acc = array<f32, TILE_T>();
    let blocks = (K + BLOCK - 1u) / BLOCK;
    for (var kb = 0u; kb < blocks; kb++) {
        // Stage x[t0 .. t0+TILE_T, 32 kb .. 32 kb + 32]: 64 vec4s, one per invocation.
        let tt = lid / GROUPS;
        let g = lid % GROUPS;
        let t = t0 + tt;
        var v = vec4<f32>(0.0);
        for (var m = 0u; m < 4u; m++) {
            let k = kb * BLOCK + 4u * g + m;
            if (t < dims.tokens && k < K) {
                v[m] = x[t * K + k];
            }
        }
        xs[tt][g] = v;
        workgroupBarrier();
        if (o < N) {
            var part = array<f32, TILE_T>();  // explicitly zeroed every block
            for (var gi = 0u; gi < GROUPS; gi++) {
                let wv = weight_group(kb, gi, o);
                for (var i = 0u; i < TILE_T; i++) {
                    part[i] += dot(xs[i][gi], wv);
                }
            }
            var s = 1.0;
            if (FORMAT != FORMAT_F32) {
                s = scales[kb * N + o];
            }
            for (var i = 0u; i < TILE_T; i++) {
                acc[i] += s * part[i];
            }
        }
        workgroupBarrier();
    }
    if (o >= N) {
        return;
    }
    for (var i = 0u; i < TILE_T; i++) {
        let t = t0 + i;
        if (t < dims.tokens) {
            var r = acc[i] + bias[o];
            if (EPILOGUE == EPILOGUE_GELU) {
                r = gelu(r);
            } else if (EPILOGUE == EPILOGUE_RESIDUAL) {
                r += residual[t * N + o];
            }
            y[t * N + o] = r;
        }
    }
}
