//! Item-to-item collaborative filtering over who took part in which thread.
//!
//! Each topic is the set of people who asked, answered or commented in it. Two
//! topics are similar when the same people took part in both, with prolific
//! people counting less (inverse user frequency):
//!
//! ```text
//! sim(u, v) = sum_{i in I_u ∩ I_v} w_i^2 / (sqrt(sum_{i in I_u} w_i^2) * sqrt(sum_{i in I_v} w_i^2))
//! w_i       = ln(1 + topics / threads_i)
//! ```
//! (cosine similarity of the topics' participant vectors with entries w_i).

use std::collections::HashMap;

/// Participant sets of topics, ready to compare.
#[derive(Debug, Clone, Default)]
pub struct CoParticipation {
    /// Per topic (by position): (user index, weight) sorted by user index.
    members: Vec<Vec<(u32, f32)>>,
    /// Per topic: the norm of its participant vector.
    norms: Vec<f32>,
    /// Per user: the topics they took part in.
    topics_of: Vec<Vec<u32>>,
}

impl CoParticipation {
    /// Builds from (topic position, user key) pairs; duplicates count once.
    /// `topics` is the number of topics (positions are below it).
    pub fn build<'a>(topics: usize, pairs: impl IntoIterator<Item = (usize, &'a str)>) -> Self {
        let mut user_ids: HashMap<&str, u32> = HashMap::new();
        let mut sets: Vec<Vec<u32>> = vec![Vec::new(); topics];
        for (t, user) in pairs {
            let next = user_ids.len() as u32;
            let u = *user_ids.entry(user).or_insert(next);
            sets[t].push(u);
        }
        let mut topics_of: Vec<Vec<u32>> = vec![Vec::new(); user_ids.len()];
        for (t, s) in sets.iter_mut().enumerate() {
            s.sort_unstable();
            s.dedup();
            for &u in s.iter() {
                topics_of[u as usize].push(t as u32);
            }
        }
        let n = topics.max(1) as f32;
        let weight: Vec<f32> = topics_of.iter().map(|ts| (1.0 + n / ts.len().max(1) as f32).ln()).collect();
        let members: Vec<Vec<(u32, f32)>> = sets.iter().map(|s| s.iter().map(|&u| (u, weight[u as usize])).collect()).collect();
        let norms = members.iter().map(|m| m.iter().map(|(_, w)| w * w).sum::<f32>().sqrt()).collect();
        CoParticipation { members, norms, topics_of }
    }

    /// Walks the two sorted participant lists together: (sum of w_i^2 over shared people, their count).
    fn overlap(&self, a: usize, b: usize) -> (f32, usize) {
        let (ma, mb) = (&self.members[a], &self.members[b]);
        let (mut i, mut j, mut dot, mut n) = (0, 0, 0.0, 0);
        while i < ma.len() && j < mb.len() {
            match ma[i].0.cmp(&mb[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += ma[i].1 * mb[j].1;
                    n += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        (dot, n)
    }

    /// sim(a, b) as in the module docs; 0 when either topic has no participants.
    pub fn similarity(&self, a: usize, b: usize) -> f32 {
        let d = self.norms[a] * self.norms[b];
        if d > 0.0 { self.overlap(a, b).0 / d } else { 0.0 }
    }

    /// How many people took part in both topics.
    pub fn shared(&self, a: usize, b: usize) -> usize {
        self.overlap(a, b).1
    }

    /// Every topic sharing a participant with `a`, with its similarity (unordered).
    pub fn neighbours(&self, a: usize) -> Vec<(usize, f32)> {
        let mut seen: Vec<usize> = self.members[a].iter().flat_map(|&(u, _)| self.topics_of[u as usize].iter().map(|&t| t as usize)).filter(|&t| t != a).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().map(|t| (t, self.similarity(a, t))).collect()
    }

    /// Number of distinct participants of topic `a`.
    pub fn participants(&self, a: usize) -> usize {
        self.members[a].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over explicit weighted vectors: the oracle.
    #[test]
    fn similarity_is_the_cosine_of_weighted_participant_vectors() {
        let pairs = [(0, "ann"), (0, "bob"), (1, "bob"), (1, "cy"), (2, "dee"), (0, "ann"), (3, "ann"), (3, "bob")];
        let cp = CoParticipation::build(4, pairs.iter().map(|&(t, u)| (t, u)));
        let n = 4.0f32;
        let w = |threads: f32| (1.0 + n / threads).ln();
        let (wa, wb, wc) = (w(2.0), w(3.0), w(1.0)); // ann: 0,3; bob: 0,1,3; cy: 1
        let expect01 = wb * wb / ((wa * wa + wb * wb).sqrt() * (wb * wb + wc * wc).sqrt());
        assert!((cp.similarity(0, 1) - expect01).abs() < 1e-6);
        assert!((cp.similarity(0, 3) - 1.0).abs() < 1e-6, "same participants");
        assert_eq!(cp.similarity(0, 2), 0.0);
        assert_eq!((cp.shared(0, 1), cp.shared(0, 3), cp.shared(0, 2)), (1, 2, 0));
        let mut nb = cp.neighbours(0);
        nb.sort_by_key(|x| x.0);
        assert_eq!(nb.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 3]);
    }
}
