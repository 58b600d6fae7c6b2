//! Hybrid retrieval: fusing a dense (meaning) ranking with a lexical (BM25)
//! one by reciprocal rank fusion.
//!
//! RRF (Cormack, Clarke and Büttcher, 2009) scores a document
//! `sum over lists of weight / (K + rank)`, rank counted from 1. It needs no
//! score calibration between methods whose scales have nothing in common
//! (cosine in [-1, 1], BM25 unbounded), which is why the assistant uses it:
//! the same constants serve every forum without tuning per site.

/// RRF's damping constant: the customary 60, which keeps the very top of one
/// list from drowning agreement further down both.
pub const RRF_K: f32 = 60.0;
/// How deep each list contributes; documents past this rank add nothing.
pub const RRF_DEPTH: usize = 100;

/// One ranked list to fuse: a score per document (higher is better) and its weight.
pub struct Ranking<'a> {
    /// Score of every document, by position; `None` marks a document the method
    /// did not retrieve at all (BM25 with no shared term), which adds nothing.
    pub scores: &'a [Option<f32>],
    /// Multiplies this list's contributions.
    pub weight: f32,
}

/// Positions of retrieved documents, best first; ties break by position so the
/// result does not depend on sort stability.
pub fn order(scores: &[Option<f32>], skip: Option<usize>) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].is_some() && Some(i) != skip).collect();
    ids.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    ids
}

/// Fused score of every document (0 for documents no list ranks in its top
/// [`RRF_DEPTH`]). `skip` leaves one document (the query itself) out of every
/// ranking so it does not push the others down.
pub fn reciprocal_rank(lists: &[Ranking<'_>], len: usize, skip: Option<usize>) -> Vec<f32> {
    let mut fused = vec![0.0f32; len];
    for list in lists {
        assert_eq!(list.scores.len(), len, "every ranking must score the same documents");
        for (rank0, i) in order(list.scores, skip).into_iter().take(RRF_DEPTH).enumerate() {
            fused[i] += list.weight / (RRF_K + rank0 as f32 + 1.0);
        }
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_beats_one_list_s_favourite() {
        // Document 2 is second in both lists; 0 and 1 each top one list and are absent from the other.
        let dense = [Some(0.9), Some(0.1), Some(0.8), Some(0.2)];
        let lexical = [None, Some(7.0), Some(5.0), None];
        let f = reciprocal_rank(&[Ranking { scores: &dense, weight: 1.0 }, Ranking { scores: &lexical, weight: 1.0 }], 4, None);
        assert!(f[2] > f[0] && f[2] > f[1], "{f:?}");
        // Exact values: 2 is rank 2 in both; 0 is rank 1 in dense only; 3 is rank 3 in dense only.
        assert!((f[2] - 2.0 / 62.0).abs() < 1e-7 && (f[0] - 1.0 / 61.0).abs() < 1e-7 && (f[3] - 1.0 / 63.0).abs() < 1e-7, "{f:?}");
    }

    #[test]
    fn skipped_document_scores_nothing_and_ranks_nothing() {
        let dense = [Some(1.0), Some(0.5), Some(0.2)];
        let f = reciprocal_rank(&[Ranking { scores: &dense, weight: 1.0 }], 3, Some(0));
        assert_eq!(f[0], 0.0);
        assert!((f[1] - 1.0 / 61.0).abs() < 1e-7, "document 1 moves up to rank 1: {f:?}");
    }

    #[test]
    fn ties_break_by_position() {
        assert_eq!(order(&[Some(1.0), Some(2.0), Some(1.0), None], None), vec![1, 0, 2]);
    }

    #[test]
    fn depth_limits_contributions() {
        let scores: Vec<Option<f32>> = (0..RRF_DEPTH + 5).map(|i| Some(-(i as f32))).collect();
        let f = reciprocal_rank(&[Ranking { scores: &scores, weight: 1.0 }], scores.len(), None);
        assert!(f[RRF_DEPTH - 1] > 0.0 && f[RRF_DEPTH] == 0.0);
    }
}
