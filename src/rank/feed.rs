//! The "for you" feed, from the visitor's own reading history (which never
//! leaves their browser).
//!
//! Each visit weighs by recency (half-life [`HALF_LIFE_DAYS`]) and engagement
//! (time spent, arriving from a suggestion). Visits fall into a few interests:
//! two read topics share an interest when their topics are close in meaning,
//! so a visitor who reads about both error correction and quantum chemistry
//! gets both, in proportion, rather than one blurred average. Candidates are
//! the nearest topics and the co-participation neighbours of what was read
//! (stored in their links, so the feed needs no vectors). Each candidate gets
//! five [`Signals`], blended by [`blend`], the same function `cairn eval recs`
//! measures on real histories:
//!
//! * content: the strongest decayed cosine to a read topic;
//! * people: decayed co-participation with the read topics;
//! * tags: a Markov chain over the visitor's own tag transitions
//!   (`P(j | i) = (C_ij + a p_j) / (C_i + a)`, smoothed towards how often the
//!   visitor reads tag j) from the tags of what they read last;
//! * freshness and popularity, as priors.
//!
//! Topics already read are demoted (not hidden: a small forum may have little
//! else). Up to [`UNANSWERED_SLOTS`] unanswered questions close to the
//! visitor's interests are surfaced so they can answer: that is how a
//! community grows. Every suggestion says why, truthfully.

use super::related::{listed_similarity, stored_similarity};
use super::{jaccard, Reason, Suggestion};
use crate::error::Result;
use crate::fetch_first;
use crate::index::format::{TopicCard, TopicLinks, TopicRef};
use crate::index::store::{Needs, Step, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A visit's weight halves every this many days.
pub const HALF_LIFE_DAYS: f64 = 14.0;
/// Visits that shape the feed at most (the heaviest).
pub const MAX_VISITS: usize = 30;
/// Interests at most.
pub const MAX_INTERESTS: usize = 3;
/// Two read topics belong to one interest from this cosine.
pub const INTEREST_COSINE: f32 = 0.5;
/// Unanswered questions surfaced at most.
pub const UNANSWERED_SLOTS: usize = 2;
/// ... when at least this close in meaning to something the visitor read.
pub const UNANSWERED_MIN_COSINE: f32 = 0.45;
/// Smoothing of the tag chain (pseudo-transitions per tag).
pub const TAG_SMOOTHING: f32 = 1.0;
/// Weights of the standardised signals in [`blend`].
pub const W_CONTENT: f32 = 1.0;
/// See [`W_CONTENT`].
pub const W_PEOPLE: f32 = 0.6;
/// See [`W_CONTENT`].
pub const W_TAGS: f32 = 0.3;
/// See [`W_CONTENT`].
pub const W_POPULAR: f32 = 0.5;
/// See [`W_CONTENT`].
pub const W_FRESH: f32 = 0.3;
/// Blended score (in standard deviations) a read topic loses.
pub const READ_PENALTY: f32 = 3.0;
/// Blended score (in standard deviations) a candidate loses per unit of cosine
/// to a suggestion already picked: the feed's maximal marginal relevance.
pub const REDUNDANCY_PENALTY: f32 = 0.5;

/// One topic the visitor viewed, as the browser's history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// Topic id.
    pub id: String,
    /// Last view, in days since 1970-01-01 (fractional).
    pub last: f64,
    /// Seconds spent on it, all visits together.
    #[serde(default)]
    pub seconds: f64,
    /// Whether the visitor came to it from a Cairn suggestion.
    #[serde(default)]
    pub clicked: bool,
}

/// How much a visit shapes the feed: recency times engagement.
pub fn visit_weight(age_days: f64, seconds: f64, clicked: bool) -> f32 {
    let recency = 0.5f64.powf(age_days.max(0.0) / HALF_LIFE_DAYS);
    let engagement = 1.0 + (1.0 + seconds.max(0.0) / 30.0).ln() + if clicked { 0.5 } else { 0.0 };
    (recency * engagement) as f32
}

/// What is known about one candidate, before blending.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    /// Strongest (weighted) cosine to a read topic.
    pub content: f32,
    /// Weighted co-participation with the read topics.
    pub people: f32,
    /// The tag chain's prior for the candidate's tags.
    pub tags: f32,
    /// Popularity prior (log scale).
    pub popular: f32,
    /// Freshness prior (higher is newer).
    pub fresh: f32,
}

/// Subtracts the mean and divides by the standard deviation (all-equal inputs become zeros).
fn standardise(v: impl Iterator<Item = f32> + Clone) -> Vec<f32> {
    let n = v.clone().count().max(1) as f32;
    let mean = v.clone().sum::<f32>() / n;
    let sd = (v.clone().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
    v.map(|x| if sd > 0.0 { (x - mean) / sd } else { 0.0 }).collect()
}

/// The blend: each signal standardised over the candidates, then weighted.
pub fn blend(signals: &[Signals]) -> Vec<f32> {
    let c = standardise(signals.iter().map(|s| s.content));
    let p = standardise(signals.iter().map(|s| s.people));
    let t = standardise(signals.iter().map(|s| s.tags));
    let q = standardise(signals.iter().map(|s| s.popular));
    let f = standardise(signals.iter().map(|s| s.fresh));
    (0..signals.len()).map(|i| W_CONTENT * c[i] + W_PEOPLE * p[i] + W_TAGS * t[i] + W_POPULAR * q[i] + W_FRESH * f[i]).collect()
}

/// Popularity prior from a card's counts.
pub fn popularity(answers: u32, comments: u32, score: i64) -> f32 {
    (1.0 + answers as f32 + comments as f32 / 4.0 + score.max(0) as f32).ln()
}

/// Freshness prior for a topic `age_days` old.
pub fn freshness(age_days: f64) -> f32 {
    -((age_days.max(0.0) + 1.0).ln() as f32)
}

/// A first-order Markov chain over tags, from the tags of topics read in order.
#[derive(Debug, Clone, Default)]
pub struct TagChain {
    /// C_ij: transitions from tag i to tag j.
    counts: HashMap<String, HashMap<String, f32>>,
    /// C_i: transitions out of tag i.
    totals: HashMap<String, f32>,
    /// How often each tag was read, as a share of all tags read (the smoothing prior p_j).
    share: HashMap<String, f32>,
    /// Tags of the topic read last.
    last: Vec<String>,
}

impl TagChain {
    /// Builds the chain from the tag lists of the topics read, oldest first.
    pub fn from_sequence<'a>(sequence: impl IntoIterator<Item = &'a [String]>) -> TagChain {
        let mut chain = TagChain::default();
        let mut prev: Option<&[String]> = None;
        let mut seen = 0f32;
        for tags in sequence {
            for t in tags {
                *chain.share.entry(t.clone()).or_insert(0.0) += 1.0;
                seen += 1.0;
            }
            if let Some(p) = prev {
                for i in p {
                    for j in tags {
                        *chain.counts.entry(i.clone()).or_default().entry(j.clone()).or_insert(0.0) += 1.0;
                        *chain.totals.entry(i.clone()).or_insert(0.0) += 1.0;
                    }
                }
            }
            prev = Some(tags);
            chain.last = tags.to_vec();
        }
        for v in chain.share.values_mut() {
            *v /= seen.max(1.0);
        }
        chain
    }

    /// P(j | i), smoothed towards the share of j.
    pub fn probability(&self, i: &str, j: &str) -> f32 {
        let p = self.share.get(j).copied().unwrap_or(0.0);
        let c = self.counts.get(i).and_then(|m| m.get(j)).copied().unwrap_or(0.0);
        let total = self.totals.get(i).copied().unwrap_or(0.0);
        (c + TAG_SMOOTHING * p) / (total + TAG_SMOOTHING)
    }

    /// The prior for a topic tagged `tags`: its best tag's probability of following what was read last.
    pub fn prior(&self, tags: &[String]) -> f32 {
        tags.iter()
            .map(|j| if self.last.is_empty() { self.share.get(j).copied().unwrap_or(0.0) } else { self.last.iter().map(|i| self.probability(i, j)).fold(0.0, f32::max) })
            .fold(0.0, f32::max)
    }
}

/// How many suggestions.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Suggestions at most.
    pub k: usize,
    /// Now, in days since 1970-01-01.
    pub now: f64,
}

/// One interest of the visitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interest {
    /// The heaviest read topic of the interest (its title names it).
    pub title: String,
    /// Its tags most read, best first.
    pub tags: Vec<String>,
    /// Share of the visitor's weight, in [0, 1].
    pub weight: f32,
}

/// The feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feed {
    /// The suggestions, best first.
    pub items: Vec<FeedItem>,
    /// What the visitor reads, as interests.
    pub interests: Vec<Interest>,
}

/// A suggestion of the feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedItem {
    /// The suggestion (reason included).
    #[serde(flatten)]
    pub suggestion: Suggestion,
    /// An unanswered question the visitor might answer.
    pub unanswered: bool,
    /// The interest it serves (index into [`Feed::interests`]).
    pub interest: usize,
}

/// Days since 1970-01-01 of an ISO 8601 UTC timestamp ("2018-03-12T17:00:45.567"); 0 when unreadable.
pub fn days(iso: &str) -> f64 {
    let num = |r: std::ops::Range<usize>| iso.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    if y == 0 {
        return 0.0;
    }
    let secs = num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146097 + doe - 719468) as f64 + secs as f64 / 86400.0
}

/// A read topic with its weight.
struct Read<'s> {
    r: TopicRef,
    card: &'s TopicCard,
    links: &'s TopicLinks,
    weight: f32,
    interest: usize,
}

/// Why a candidate is suggested, and by which read topic.
#[derive(Default, Clone, Copy)]
struct Why {
    content: f32,
    content_from: Option<usize>,
    people: f32,
    people_from: Option<usize>,
    people_best: f32,
}

/// The feed for a visitor whose history is `visits`.
pub fn feed(store: &Store, visits: &[Visit], opts: FeedOptions) -> Result<Step<Feed>> {
    let mut needs = Needs::default();
    let mut visits: Vec<(&Visit, f32)> = visits.iter().map(|v| (v, visit_weight(opts.now - v.last, v.seconds, v.clicked))).collect();
    visits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    visits.truncate(MAX_VISITS);

    // Where the read topics are, and their cards.
    let mut located = Vec::new();
    for (v, w) in &visits {
        match store.locate(&v.id, &mut needs) {
            Some(Some(r)) => located.push((r, *w, *v)),
            Some(None) => {} // no longer in the index
            None => {}
        }
    }
    fetch_first!(needs);
    for (r, _, _) in &located {
        store.card(*r, &mut needs);
        store.links(*r, &mut needs);
    }
    fetch_first!(needs);
    let mut read: Vec<Read> = located
        .iter()
        .filter_map(|(r, w, _)| Some(Read { r: *r, card: store.card(*r, &mut needs)?, links: store.links(*r, &mut needs)?, weight: *w, interest: 0 }))
        .collect();
    if read.is_empty() {
        return Ok(Step::Ready(Feed { items: Vec::new(), interests: Vec::new() }));
    }

    // Interests: heaviest first; a read topic joins the first interest whose seed it is close to.
    let mut seeds: Vec<usize> = Vec::new();
    for i in 0..read.len() {
        let near = seeds.iter().position(|&s| read_similarity(&read[s], &read[i]) >= INTEREST_COSINE);
        read[i].interest = match near {
            Some(k) => k,
            None if seeds.len() < MAX_INTERESTS => {
                seeds.push(i);
                seeds.len() - 1
            }
            None => (0..seeds.len())
                .max_by(|&a, &b| {
                    let sa = read_similarity(&read[seeds[a]], &read[i]);
                    let sb = read_similarity(&read[seeds[b]], &read[i]);
                    sa.total_cmp(&sb).then(b.cmp(&a))
                })
                .expect("seeds exist"),
        };
    }
    let total: f32 = read.iter().map(|r| r.weight).sum::<f32>().max(1e-9);
    let max_w = read.iter().map(|r| r.weight).fold(0.0f32, f32::max).max(1e-9);
    let interests: Vec<Interest> = seeds
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let members: Vec<&Read> = read.iter().filter(|r| r.interest == k).collect();
            let mut tag_weight: BTreeMap<&str, f32> = BTreeMap::new();
            for m in &members {
                for t in &m.card.tags {
                    *tag_weight.entry(t).or_insert(0.0) += m.weight;
                }
            }
            let mut tags: Vec<(&str, f32)> = tag_weight.into_iter().collect();
            tags.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            Interest {
                title: read[s].card.title.clone(),
                tags: tags.into_iter().take(3).map(|(t, _)| t.to_string()).collect(),
                weight: members.iter().map(|m| m.weight).sum::<f32>() / total,
            }
        })
        .collect();

    // Candidates from what the read topics link to.
    let read_ids: HashSet<&str> = read.iter().map(|r| r.card.id.as_str()).collect();
    let mut why: BTreeMap<TopicRef, Why> = BTreeMap::new();
    for (h, rd) in read.iter().enumerate() {
        let w = rd.weight / max_w;
        for s in &rd.links.similar {
            let e = why.entry(s.topic).or_default();
            if w * s.cos > e.content {
                e.content = w * s.cos;
                e.content_from = Some(h);
            }
        }
        for p in &rd.links.people {
            let e = why.entry(p.topic).or_default();
            e.people += w * p.sim;
            if w * p.sim > e.people_best {
                e.people_best = w * p.sim;
                e.people_from = Some(h);
            }
            if w * p.cos > e.content {
                e.content = w * p.cos;
                e.content_from = Some(h);
            }
        }
    }
    for r in read.iter().map(|r| r.r) {
        why.remove(&r);
    }
    for r in why.keys() {
        store.card(*r, &mut needs);
    }
    fetch_first!(needs);

    let sequence: Vec<&Read> = {
        let mut s: Vec<&Read> = read.iter().collect();
        let last_of = |r: &Read| located.iter().find(|l| l.0 == r.r).map_or(0.0, |l| l.2.last);
        s.sort_by(|a, b| last_of(a).total_cmp(&last_of(b)).then(a.card.id.cmp(&b.card.id)));
        s
    };
    let chain = TagChain::from_sequence(sequence.iter().map(|r| r.card.tags.as_slice()));

    let mut cands: Vec<(TopicRef, &TopicCard, Why)> = why.into_iter().filter_map(|(r, w)| store.card(r, &mut needs).map(|c| (r, c, w))).collect();
    cands.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let signals: Vec<Signals> = cands
        .iter()
        .map(|(_, c, w)| Signals {
            content: w.content,
            people: w.people,
            tags: chain.prior(&c.tags),
            popular: popularity(c.answers, c.comments, c.score),
            fresh: freshness(opts.now - days(&c.created)),
        })
        .collect();
    let mut scores = blend(&signals);
    for (i, (_, c, _)) in cands.iter().enumerate() {
        if read_ids.contains(c.id.as_str()) {
            scores[i] -= READ_PENALTY;
        }
    }

    // Slots per interest in proportion to its weight (at least one each while room remains).
    let k = opts.k;
    let interest_of = |w: &Why| w.content_from.or(w.people_from).map_or(0, |h| read[h].interest);
    let mut quota: Vec<usize> = interests.iter().map(|i| ((i.weight * k as f32).round() as usize).max(1)).collect();
    let mut chosen: Vec<(usize, bool)> = Vec::new(); // (candidate, unanswered slot)
    let mut taken = vec![false; cands.len()];
    let pick = |chosen: &Vec<(usize, bool)>, taken: &Vec<bool>, filter: &dyn Fn(usize) -> bool| -> Option<usize> {
        (0..cands.len())
            .filter(|&i| !taken[i] && filter(i))
            .map(|i| {
                let redundancy = chosen.iter().map(|&(j, _)| stored_similarity((cands[i].0, cands[i].1), (cands[j].0, cands[j].1))).fold(0.0f32, f32::max);
                (i, scores[i] - REDUNDANCY_PENALTY * redundancy)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)
    };
    // Unanswered questions the visitor knows about.
    let mut unanswered = 0;
    while unanswered < UNANSWERED_SLOTS && chosen.len() < k {
        let fits = |i: usize| cands[i].1.unanswered() && raw_cos(&cands[i].2, &read, max_w) >= UNANSWERED_MIN_COSINE && !read_ids.contains(cands[i].1.id.as_str());
        let Some(i) = pick(&chosen, &taken, &fits) else { break };
        taken[i] = true;
        chosen.push((i, true));
        unanswered += 1;
    }
    while chosen.len() < k {
        let open: Vec<usize> = (0..quota.len()).filter(|&q| quota[q] > 0).collect();
        let next = if open.is_empty() { pick(&chosen, &taken, &|_| true) } else { pick(&chosen, &taken, &|i| open.contains(&interest_of(&cands[i].2))) };
        let Some(i) = next.or_else(|| pick(&chosen, &taken, &|_| true)) else { break };
        taken[i] = true;
        let q = interest_of(&cands[i].2);
        quota[q] = quota[q].saturating_sub(1);
        chosen.push((i, false));
    }
    // Best first, the unanswered ones among them by score too.
    chosen.sort_by(|a, b| scores[b.0].total_cmp(&scores[a.0]).then(cands[a.0].1.id.cmp(&cands[b.0].1.id)));

    let items = chosen
        .into_iter()
        .map(|(i, unanswered)| {
            let (_, c, w) = &cands[i];
            let why = reasons(c, w, &read, &signals[i], unanswered);
            FeedItem {
                suggestion: Suggestion {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    url: c.url.clone(),
                    score: scores[i],
                    tags: c.tags.clone(),
                    answers: c.answers,
                    accepted: c.accepted,
                    reason: Suggestion::english(&why),
                    why,
                },
                unanswered,
                interest: interest_of(w),
            }
        })
        .collect();
    Ok(Step::Ready(Feed { items, interests }))
}

/// Cosine of two read topics as far as their full lists of nearest topics tell.
fn read_similarity(a: &Read, b: &Read) -> f32 {
    listed_similarity((a.r, &a.links.similar), (b.r, &b.links.similar))
}

/// The unweighted cosine behind a candidate's content signal.
fn raw_cos(w: &Why, read: &[Read], max_w: f32) -> f32 {
    w.content_from.map_or(0.0, |h| w.content / (read[h].weight / max_w).max(1e-9))
}

/// Short, true reasons for a feed item: the main one, after "unanswered" when it is.
fn reasons(c: &TopicCard, w: &Why, read: &[Read], s: &Signals, unanswered: bool) -> Vec<Reason> {
    let title = |h: usize| read[h].card.title.clone();
    let max_w = read.iter().map(|r| r.weight).fold(0.0f32, f32::max).max(1e-9);
    let cos = raw_cos(w, read, max_w);
    let tag_reason = || {
        c.tags
            .iter()
            .map(|t| (t, read.iter().filter(|r| r.card.tags.contains(t)).count()))
            .filter(|(_, n)| *n >= 2)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(t, n)| Reason::TaggedLike { tag: t.clone(), count: n as u32 })
    };
    let main = if let (Some(h), true) = (w.content_from, cos >= 0.4) {
        Reason::BecauseYouRead { title: title(h) }
    } else if let Some(h) = w.people_from {
        Reason::PeopleFrom { title: title(h) }
    } else if let Some(t) = tag_reason() {
        t
    } else if let Some(h) = w.content_from {
        Reason::RelatedTo { title: title(h) }
    } else {
        let shared = read.iter().map(|r| jaccard(&r.card.tags, &c.tags)).fold(0.0f32, f32::max);
        if shared > 0.0 && s.tags > 0.0 { Reason::SharesTags } else { Reason::Popular }
    };
    if unanswered { vec![Reason::Unanswered, main] } else { vec![main] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_weigh_by_recency_and_engagement() {
        assert!((visit_weight(0.0, 0.0, false) - 1.0).abs() < 1e-6);
        assert!((visit_weight(HALF_LIFE_DAYS, 0.0, false) - 0.5).abs() < 1e-6);
        assert!(visit_weight(0.0, 120.0, false) > visit_weight(0.0, 10.0, false));
        assert!(visit_weight(1.0, 0.0, true) > visit_weight(1.0, 0.0, false));
    }

    #[test]
    fn the_tag_chain_follows_transitions_and_smooths() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let seq = [t(&["qiskit"]), t(&["error-correction"]), t(&["qiskit"]), t(&["error-correction"]), t(&["qiskit"])];
        let chain = TagChain::from_sequence(seq.iter().map(|v| v.as_slice()));
        // qiskit was always followed by error-correction.
        assert!(chain.probability("qiskit", "error-correction") > chain.probability("qiskit", "qiskit"));
        assert!(chain.prior(&t(&["error-correction"])) > chain.prior(&t(&["qiskit"])), "last read was qiskit");
        assert!(chain.prior(&t(&["never-read"])) == 0.0);
        let total: f32 = ["qiskit", "error-correction"].iter().map(|j| chain.probability("qiskit", j)).sum();
        assert!((total - 1.0).abs() < 1e-5, "probabilities out of a tag sum to 1: {total}");
    }

    #[test]
    fn blend_standardises_each_signal() {
        let s = [
            Signals { content: 0.9, people: 0.0, tags: 0.1, popular: 1.0, fresh: -1.0 },
            Signals { content: 0.1, people: 0.0, tags: 0.1, popular: 1.0, fresh: -1.0 },
        ];
        let b = blend(&s);
        assert!((b[0] - W_CONTENT).abs() < 1e-5 && (b[1] + W_CONTENT).abs() < 1e-5, "{b:?}");
    }

    #[test]
    fn days_counts_from_the_epoch() {
        assert_eq!(days("1970-01-01T00:00:00.000"), 0.0);
        assert_eq!(days("2018-03-12T12:00:00.000"), 17602.5);
    }
}
