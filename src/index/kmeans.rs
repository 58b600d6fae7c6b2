//! Spherical k-means over unit vectors: the coarse clusters that decide which
//! vector shards a query fetches (native only; the browser only reads the
//! centroids).
//!
//! Deterministic: k-means++ seeding from a fixed seed over the points in the
//! order given (the builder orders topics by id), then Lloyd iterations with
//! cosine similarity and re-normalised centroids until (almost) no point moves
//! or [`MAX_ITERATIONS`]. A cluster that empties is re-seeded with the point
//! least similar to its own centroid.
//!
//! Large inputs train on an evenly spaced sample of [`TRAIN_POINTS_PER_CLUSTER`]
//! points per cluster and then assign every point in one pass, as FAISS does:
//! the centroids of a million topics need a few hundred thousand, not a million.
//! Assignment is a blocked matrix product (points x centroids^T) on the f32
//! kernel the encoder uses, so its cost is the kernel's, not a dot product's.

use crate::backend::cpu::{dot, Linear};
use rayon::prelude::*;

/// Lloyd iterations at most.
pub const MAX_ITERATIONS: usize = 25;
/// Topics per cluster the builder aims for.
pub const TARGET_CLUSTER_SIZE: usize = 160;
/// Clusters at most (slot and cluster numbers are u16; shards stay few).
pub const MAX_CLUSTERS: usize = 4096;
/// Training points per cluster at most; above, k-means trains on a sample.
/// FAISS warns below 39; 64 keeps the centroids stable at a third of the cost
/// of its default 256.
pub const TRAIN_POINTS_PER_CLUSTER: usize = 64;
/// Lloyd iterations stop once fewer than this share of the points move.
const CONVERGED_SHARE: f64 = 1e-3;
/// Points scored against every centroid in one matrix product.
const BLOCK: usize = 256;

/// How many clusters `n` topics get, aiming at `size` topics per cluster.
pub fn clusters_for(n: usize, size: usize) -> usize {
    n.div_ceil(size.max(1)).clamp(1, MAX_CLUSTERS)
}

/// xorshift64*: reproducible pseudo-random numbers without a dependency.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The result: centroids (k, dim) row-major, unit length, and each point's cluster.
pub struct Clustering {
    /// Centroids, row-major.
    pub centroids: Vec<f32>,
    /// Cluster of each point.
    pub assignment: Vec<usize>,
}

/// Index of the centroid most similar to `v` (ties to the lower index).
pub fn nearest(centroids: &[f32], dim: usize, v: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for (c, row) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(row, v);
        if s > best.0 {
            best = (s, c);
        }
    }
    best.1
}

/// Nearest centroid (k, dim) of every point (n, dim), ties to the lower index:
/// blocks of [`BLOCK`] points times centroids^T, in parallel.
pub fn assign(points: &[f32], dim: usize, centroids: &[f32]) -> Vec<usize> {
    let k = centroids.len() / dim;
    let scorer = Linear::new(centroids, &vec![0.0; k], k, dim);
    points
        .par_chunks(BLOCK * dim)
        .flat_map_iter(|block| {
            let rows = block.len() / dim;
            let mut scores = vec![0.0f32; rows * k];
            scorer.forward(block, rows, &mut scores);
            scores.chunks_exact(k).map(best_column).collect::<Vec<_>>()
        })
        .collect()
}

/// Index of the largest score (ties to the lower index).
fn best_column(scores: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for (c, &s) in scores.iter().enumerate() {
        if s > best.0 {
            best = (s, c);
        }
    }
    best.1
}

/// Clusters `points` (n, dim), row-major unit vectors, into `k` clusters (k <= n).
pub fn cluster(points: &[f32], dim: usize, k: usize) -> Clustering {
    let n = points.len() / dim;
    let k = k.clamp(1, n.max(1));
    if n == 0 {
        return Clustering { centroids: vec![0.0; k * dim], assignment: Vec::new() };
    }
    let train = TRAIN_POINTS_PER_CLUSTER * k;
    if n <= train {
        return lloyd(points, dim, k);
    }
    // Every (n / train)-th point, spread over the whole input.
    let sample: Vec<f32> = (0..train).flat_map(|j| points[j * n / train * dim..(j * n / train + 1) * dim].iter().copied()).collect();
    let centroids = lloyd(&sample, dim, k).centroids;
    let assignment = assign(points, dim, &centroids);
    Clustering { centroids, assignment }
}

/// k-means++ seeding then Lloyd iterations over all of `points`.
fn lloyd(points: &[f32], dim: usize, k: usize) -> Clustering {
    let n = points.len() / dim;
    let row = |i: usize| &points[i * dim..(i + 1) * dim];

    // k-means++: each new centre drawn with probability proportional to its distance to the nearest centre.
    let mut rng = Rng(0x00c0_ffee_5eed_1234);
    let mut centroids: Vec<f32> = row(0).to_vec();
    let mut dist: Vec<f32> = (0..n).map(|i| (1.0 - dot(row(i), row(0))).max(0.0)).collect();
    while centroids.len() / dim < k {
        let total: f64 = dist.iter().map(|&d| d as f64).sum();
        let pick = if total <= 0.0 {
            centroids.len() / dim % n // all points coincide with centres: take any
        } else {
            let mut target = rng.next_f64() * total;
            let mut pick = n - 1;
            for (i, &d) in dist.iter().enumerate() {
                target -= d as f64;
                if target <= 0.0 && d > 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        };
        let c = row(pick).to_vec();
        dist.par_iter_mut().enumerate().for_each(|(i, d)| *d = d.min((1.0 - dot(row(i), &c)).max(0.0)));
        centroids.extend_from_slice(&c);
    }

    let mut assignment = vec![usize::MAX; n];
    for _ in 0..MAX_ITERATIONS {
        let next = assign(points, dim, &centroids);
        let moved = next.iter().zip(&assignment).filter(|(a, b)| a != b).count();
        assignment = next;
        if moved as f64 <= CONVERGED_SHARE * n as f64 {
            break;
        }
        let mut sums = vec![0.0f32; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &c) in assignment.iter().enumerate() {
            counts[c] += 1;
            for (s, v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row(i)) {
                *s += v;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                // Re-seed an empty cluster with the point least similar to its centroid.
                let worst = (0..n)
                    .min_by(|&a, &b| {
                        let sa = dot(row(a), &centroids[assignment[a] * dim..(assignment[a] + 1) * dim]);
                        let sb = dot(row(b), &centroids[assignment[b] * dim..(assignment[b] + 1) * dim]);
                        sa.total_cmp(&sb).then(a.cmp(&b))
                    })
                    .expect("points exist");
                sums[c * dim..(c + 1) * dim].copy_from_slice(row(worst));
            }
            normalise(&mut sums[c * dim..(c + 1) * dim]);
        }
        centroids = sums;
    }
    Clustering { centroids, assignment }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_well_separated_groups_and_is_deterministic() {
        // Three tight groups around the axes of R^3.
        let mut pts = Vec::new();
        for i in 0..30 {
            let mut v = [0.05 * ((i * 7 % 5) as f32 - 2.0), 0.05 * ((i * 3 % 5) as f32 - 2.0), 0.0];
            v[i % 3] = 1.0;
            let mut v = v.to_vec();
            normalise(&mut v);
            pts.extend(v);
        }
        let a = cluster(&pts, 3, 3);
        for i in 0..30 {
            for j in 0..30 {
                assert_eq!(a.assignment[i] == a.assignment[j], i % 3 == j % 3, "points {i} and {j}");
            }
        }
        let b = cluster(&pts, 3, 3);
        assert_eq!(a.assignment, b.assignment);
        assert_eq!(a.centroids, b.centroids);
    }

    #[test]
    fn more_clusters_than_points_and_empty_input_are_fine() {
        let pts = vec![1.0, 0.0, 0.0, 1.0];
        let c = cluster(&pts, 2, 5);
        assert_eq!(c.centroids.len(), 4);
        assert_ne!(c.assignment[0], c.assignment[1]);
        assert!(cluster(&[], 2, 3).assignment.is_empty());
        assert_eq!(clusters_for(0, TARGET_CLUSTER_SIZE), 1);
        assert_eq!(clusters_for(161, 160), 2);
    }

    /// Seeded unit vectors (n, dim) in `groups` loose groups.
    fn random_points(n: usize, dim: usize, groups: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        let centres: Vec<f32> = (0..groups * dim).map(|_| rng.next_f64() as f32 - 0.5).collect();
        let mut pts = Vec::with_capacity(n * dim);
        for i in 0..n {
            let g = i % groups;
            let mut v: Vec<f32> = (0..dim).map(|d| centres[g * dim + d] + 0.3 * (rng.next_f64() as f32 - 0.5)).collect();
            normalise(&mut v);
            pts.extend(v);
        }
        pts
    }

    #[test]
    fn blocked_assignment_picks_the_nearest_centroid() {
        // Brute force is the oracle; sizes straddle the block of 256 and are not multiples of 4.
        let dim = 37;
        let pts = random_points(601, dim, 9, 11);
        let cents = random_points(13, dim, 13, 5);
        let got = assign(&pts, dim, &cents);
        for (i, &c) in got.iter().enumerate() {
            let p = &pts[i * dim..(i + 1) * dim];
            let best = nearest(&cents, dim, p);
            let (sg, sb) = (dot(p, &cents[c * dim..(c + 1) * dim]), dot(p, &cents[best * dim..(best + 1) * dim]));
            assert!(sg >= sb - 1e-5, "point {i}: assigned centroid {c} ({sg}), nearest is {best} ({sb})");
        }
    }

    #[test]
    fn sampled_training_still_assigns_every_point_to_its_nearest_centroid() {
        let (dim, k) = (16, 4);
        let n = TRAIN_POINTS_PER_CLUSTER * k * 3 + 7; // above the sample size
        let pts = random_points(n, dim, k, 3);
        let a = cluster(&pts, dim, k);
        assert_eq!(a.assignment.len(), n);
        for (i, &c) in a.assignment.iter().enumerate() {
            let p = &pts[i * dim..(i + 1) * dim];
            let best = nearest(&a.centroids, dim, p);
            let (sg, sb) = (dot(p, &a.centroids[c * dim..(c + 1) * dim]), dot(p, &a.centroids[best * dim..(best + 1) * dim]));
            assert!(sg >= sb - 1e-5, "point {i}: cluster {c} ({sg}), nearest {best} ({sb})");
        }
        // Four well-separated groups come out as four clusters of their own.
        for i in 0..k {
            for j in 0..n {
                if j % k == i {
                    assert_eq!(a.assignment[j], a.assignment[i], "points {i} and {j} share a group");
                }
            }
        }
        assert_eq!(a.assignment, cluster(&pts, dim, k).assignment, "deterministic");
    }
}
