// Embedding gather + LayerNorm: x[t] = LN(word[id_t] + position_and_type[pos_t]).
// The token-type row (segment A for every token) is folded into the position
// table when the weights are uploaded. The word table may be f32, int8 or int4,
// row-major, WORD_BLOCK values per scale. One workgroup per token.

override H: u32;
override EPS: f32;
override FORMAT: u32;      // FORMAT_F32 | FORMAT_Q8 | FORMAT_Q4
override WORD_BLOCK: u32;  // values sharing one scale (a whole row for per-row int8)
override ROW_WORDS: u32;   // u32 words per table row
override ROW_SCALES: u32;  // scales per table row

const WG: u32 = 128u;
const PER_THREAD: u32 = 8u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> tokens: array<vec4<u32>>;  // (tokens,): id, position, seq start, seq length
@group(0) @binding(2) var<storage, read> word: array<u32>;          // (vocab, ROW_WORDS)
@group(0) @binding(3) var<storage, read> word_scales: array<f32>;   // (vocab, ROW_SCALES); unused for f32
@group(0) @binding(4) var<storage, read> position: array<f32>;      // (max positions, H), token type added
@group(0) @binding(5) var<storage, read> ln: array<f32>;            // (2, H): gamma then beta
@group(0) @binding(6) var<storage, read_write> out: array<f32>;     // (tokens, H)

fn word_value(row: u32, c: u32) -> f32 {
    if (FORMAT == FORMAT_F32) {
        return bitcast<f32>(word[row * ROW_WORDS + c]);
    }
    let scale = word_scales[row * ROW_SCALES + c / WORD_BLOCK];
    if (FORMAT == FORMAT_Q8) {
        let w = word[row * ROW_WORDS + c / 4u];
        return f32(i32(w << (24u - 8u * (c % 4u))) >> 24u) * scale;
    }
    let w = word[row * ROW_WORDS + c / 8u];
    return (f32((w >> (4u * (c % 8u))) & 0xfu) - 8.0) * scale;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wg.x + wg.y * 65535u;
    if (t >= dims.tokens) {
        return;
    }
    let id = tokens[t].x;
    let pos = tokens[t].y;
    var v: array<f32, PER_THREAD>;
    var sum = 0.0;
    for (var i = 0u; i < PER_THREAD; i++) {
        let c = lid + i * WG;
        if (c < H) {
            v[i] = word_value(id, c) + position[pos * H + c];
        } else {
            v[i] = 0.0;
        }
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
