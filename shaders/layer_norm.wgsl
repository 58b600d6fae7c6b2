// LayerNorm over rows: out[t] = (x[t] - mean) / sqrt(var + eps) * gamma + beta.
// One workgroup per row (token); each invocation holds up to PER_THREAD values
// in registers, so the row is read once. Two-pass variance, as the CPU reference.

override H: u32;    // row width (hidden size), at most WG * PER_THREAD
override EPS: f32;  // LayerNorm epsilon

const WG: u32 = 128u;
const PER_THREAD: u32 = 8u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // (tokens, H)
@group(0) @binding(2) var<storage, read> ln: array<f32>;           // (2, H): gamma then beta
@group(0) @binding(3) var<storage, read_write> out: array<f32>;    // (tokens, H)

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wg.x + wg.y * 65535u;
    if (t >= dims.tokens) {
        return;  // the whole workgroup leaves together
    }
    var v: array<f32, PER_THREAD>;
    var sum = 0.0;
    for (var i = 0u; i < PER_THREAD; i++) {
        let c = lid + i * WG;
        v[i] = select(0.0, x[t * H + c], c < H);
        sum += v[i];
    }
    let mean = workgroup_sum(sum, lid, WG) / f32(H);
    var sq = 0.0;
    for (var i = 0u; i < PER_THREAD; i++) {
        let d = v[i] - mean;
        sq += select(0.0, d * d, lid + i * WG < H);
    }
    let inv = inverseSqrt(workgroup_sum(sq, lid, WG) / f32(H) + EPS);
    for (var i = 0u; i < PER_THREAD; i++) {
        let c = lid + i * WG;
        if (c < H) {
            out[t * H + c] = (v[i] - mean) * inv * ln[c] + ln[H + c];
        }
    }
}
