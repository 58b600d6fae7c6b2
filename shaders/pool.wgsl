// Mean pooling over each sequence's tokens, then L2 normalisation
// (as torch.nn.functional.normalize, eps 1e-12). One workgroup per sequence.

override H: u32;

const WG: u32 = 128u;
const PER_THREAD: u32 = 8u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> seqs: array<vec2<u32>>;   // (seqs,): first token, length
@group(0) @binding(2) var<storage, read> x: array<f32>;            // (tokens, H)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;    // (seqs, H)

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = wg.x;
    if (s >= dims.seqs) {
        return;
    }
    let start = seqs[s].x;
    let len = seqs[s].y;
    var v: array<f32, PER_THREAD>;
    var sq = 0.0;
    for (var i = 0u; i < PER_THREAD; i++) {
        let c = lid + i * WG;
        var sum = 0.0;
        if (c < H) {
            for (var j = 0u; j < len; j++) {
                sum += x[(start + j) * H + c];
            }
        }
        v[i] = select(0.0, sum / f32(len), len > 0u);
        sq += v[i] * v[i];
    }
    let norm = max(sqrt(workgroup_sum(sq, lid, WG)), 1e-12);
    for (var i = 0u; i < PER_THREAD; i++) {
        let c = lid + i * WG;
        if (c < H) {
            out[s * H + c] = v[i] / norm;
        }
    }
}
