// GPU-side top-k: each workgroup keeps the `keep` best of a chunk of CHUNK
// scores, best first, ties to the lower index (as the CPU's top_k). Applied
// again to its own output until one chunk remains, so only `keep` pairs are
// read back. Entries past the input, and excluded ones, carry index 0xffffffff.

const WG: u32 = 256u;
const PER_THREAD: u32 = 8u;
const CHUNK: u32 = 2048u;  // WG * PER_THREAD
const NONE: u32 = 0xffffffffu;
const NEG: f32 = -3.4e38;

struct TopkParams {
    count: u32,    // entries in the input
    keep: u32,     // k, at most WG
    indexed: u32,  // 0: input index = position (first stage); 1: read in_index
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: TopkParams;
@group(0) @binding(1) var<storage, read> in_score: array<f32>;
@group(0) @binding(2) var<storage, read> in_index: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_score: array<f32>;   // (chunks, keep)
@group(0) @binding(4) var<storage, read_write> out_index: array<u32>;   // (chunks, keep)

var<workgroup> best_score: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

// True when (sa, ia) ranks before (sb, ib).
fn better(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var s: array<f32, PER_THREAD>;
    var idx: array<u32, PER_THREAD>;
    for (var i = 0u; i < PER_THREAD; i++) {
        let p = wg.x * CHUNK + i * WG + lid;
        if (p < params.count) {
            s[i] = in_score[p];
            idx[i] = select(p, in_index[p], params.indexed == 1u);
            if (s[i] <= NEG) {
                idx[i] = NONE;  // excluded
            }
        } else {
            s[i] = NEG;
            idx[i] = NONE;
        }
    }
    for (var r = 0u; r < params.keep; r++) {
        // This invocation's best remaining entry.
        var bs = NEG;
        var bi = NONE;
        for (var i = 0u; i < PER_THREAD; i++) {
            if (idx[i] != NONE && better(s[i], idx[i], bs, bi)) {
                bs = s[i];
                bi = idx[i];
            }
        }
        best_score[lid] = bs;
        best_index[lid] = bi;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (lid < stride && better(best_score[lid + stride], best_index[lid + stride], best_score[lid], best_index[lid])) {
                best_score[lid] = best_score[lid + stride];
                best_index[lid] = best_index[lid + stride];
            }
            workgroupBarrier();
        }
        let win_score = best_score[0];
        let win_index = best_index[0];
        workgroupBarrier();
        if (lid == 0u) {
            out_score[wg.x * params.keep + r] = win_score;
            out_index[wg.x * params.keep + r] = win_index;
        }
        // The owner drops the winner (indices are unique).
        for (var i = 0u; i < PER_THREAD; i++) {
            if (win_index != NONE && idx[i] == win_index) {
                idx[i] = NONE;
            }
        }
    }
}
