// Multi-head self-attention over a ragged batch: sequences lie back to back in
// the token-major buffers with no padding, and each token attends only to the
// tokens of its own sequence (tokens[t].z = start, .w = length): that is the
// padding mask, applied by never reading past the sequence.
//
// One workgroup per (token, head). Scores live in workgroup memory; softmax
// subtracts the row maximum before exponentiating.

override H: u32;      // hidden size
override HEADS: u32;  // attention heads; H / HEADS <= WG

const WG: u32 = 64u;
const MAX_SEQ: u32 = 512u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> tokens: array<vec4<u32>>;  // id, position, seq start, seq length
@group(0) @binding(2) var<storage, read> qkv: array<f32>;           // (tokens, 3H): Q | K | V
@group(0) @binding(3) var<storage, read_write> ctx: array<f32>;     // (tokens, H): heads side by side

var<workgroup> scores: array<f32, MAX_SEQ>;
var<workgroup> query: array<f32, WG>;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wg.x;
    let head = wg.y;
    if (t >= dims.tokens) {
        return;
    }
    let d = H / HEADS;
    let scale = inverseSqrt(f32(d));
    let stride = 3u * H;
    let start = tokens[t].z;
    let len = min(tokens[t].w, MAX_SEQ);

    if (lid < d) {
        query[lid] = qkv[t * stride + head * d + lid];
    }
    workgroupBarrier();

    var local_max = -3.4e38;
    for (var j = lid; j < len; j += WG) {
        let k = (start + j) * stride + H + head * d;
        var s = 0.0;
        for (var c = 0u; c < d; c++) {
            s += query[c] * qkv[k + c];
        }
        s *= scale;
        scores[j] = s;
        local_max = max(local_max, s);
    }
    let row_max = workgroup_max(local_max, lid, WG);

    var local_sum = 0.0;
    for (var j = lid; j < len; j += WG) {
        let e = exp(scores[j] - row_max);
        scores[j] = e;
        local_sum += e;
    }
    let total = workgroup_sum(local_sum, lid, WG);  // its barriers also publish scores[]

    // Context: invocation (part, c) sums every parts-th key for column c.
    let parts = WG / d;
    let part = lid / d;
    let c = lid % d;
    var acc = 0.0;
    if (part < parts) {
        for (var j = part; j < len; j += parts) {
            acc += scores[j] * qkv[(start + j) * stride + 2u * H + head * d + c];
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    if (lid < d) {
        var sum = 0.0;
        for (var p = 0u; p < parts; p++) {
            sum += partial[p * d + lid];
        }
        ctx[t * H + head * d + lid] = sum / total;
    }
}
