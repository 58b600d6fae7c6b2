// Cosine similarity of one query against every int8 index vector:
//   score[i] = (q . c_i) / (|q| |c_i|)
// The per-vector scale cancels in a cosine, so only 1 / |c_i| is uploaded
// (0 for an all-zero vector, which then scores 0). One invocation per vector.

override DIM: u32;  // vector width, a multiple of 4

struct ScoreParams {
    count: u32,      // vectors in the index
    exclude: u32,    // a position to score -inf (the topic itself), or 0xffffffff
    query_inv_norm: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: ScoreParams;
@group(0) @binding(1) var<storage, read> query: array<vec4<f32>>;   // (DIM / 4,)
@group(0) @binding(2) var<storage, read> codes: array<u32>;         // (count, DIM / 4): four int8 codes per word
@group(0) @binding(3) var<storage, read> inv_norms: array<f32>;     // (count,)
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;  // (count,)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= params.count) {
        return;
    }
    let words = DIM / 4u;
    var s = 0.0;
    for (var g = 0u; g < words; g++) {
        s += dot(query[g], decode_q8(codes[i * words + g]));
    }
    scores[i] = select(s * inv_norms[i] * params.query_inv_norm, -3.4e38, i == params.exclude);
}
