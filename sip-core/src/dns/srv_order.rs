//! The order in which SRV targets are tried (RFC 2782, "Usage rules").
//!
//! Lowest `priority` first. Within one priority, a weighted random order: each pick
//! takes a record with probability proportional to its `weight`, records of weight 0
//! only get a chance of their own when every other weight is also 0 (RFC 2782 puts
//! them first in the running sum so that they are "very small chance" picks; a
//! zero-weight record is picked here when the draw lands on 0, as the RFC's sum rule
//! does). Each client draws its own order, which is what spreads ten thousand
//! registrations over targets of weights 60/40 as 6,000/4,000 — so the draw is seeded
//! by the registration (or call), deterministically: the same seed gives the same
//! order, and a registration that looks again finds its target where it was.

use crate::io::SrvRecord;

/// `records` in the order to try them, drawn with `seed`. Records whose target is `.`
/// ("decidedly not available", RFC 2782) are left out.
pub fn order(records: &[SrvRecord], seed: u64) -> Vec<&SrvRecord> {
    let mut rest: Vec<&SrvRecord> = records.iter().filter(|r| r.target != ".").collect();
    // Stable: records of equal priority keep the server's order before the draw, so
    // the draw alone decides among them.
    rest.sort_by_key(|r| r.priority);
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(rest.len());
    while let Some(first) = rest.first() {
        let priority = first.priority;
        let end = rest.iter().take_while(|r| r.priority == priority).count();
        let mut group: Vec<&SrvRecord> = rest.drain(..end).collect();
        // RFC 2782: zero weights first, then a running sum; pick the first record
        // whose running sum reaches a draw in 0..=total.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let draw = rng.below(total + 1);
            let mut sum = 0u64;
            let mut pick = group.len() - 1;
            for (i, r) in group.iter().enumerate() {
                sum += u64::from(r.weight);
                if sum >= draw {
                    pick = i;
                    break;
                }
            }
            out.push(group.remove(pick));
        }
    }
    out
}

/// SplitMix64: a few lines of well-known mixing, enough to spread picks; the core's
/// seeded ChaCha generator is not used because the order must depend on the seed
/// alone, not on how many draws came before.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound ≥ 1).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn priority_first_and_unavailable_targets_left_out() {
        let records = [
            srv(20, 0, "c"),
            srv(10, 5, "a"),
            srv(0, 0, "."),
            srv(10, 5, "b"),
        ];
        for seed in 0..50 {
            let o: Vec<&str> = order(&records, seed)
                .iter()
                .map(|r| r.target.as_str())
                .collect();
            assert_eq!(o.len(), 3);
            assert_eq!(o.last(), Some(&"c"), "priority 20 after priority 10: {o:?}");
            assert!(!o.contains(&"."));
        }
    }

    #[test]
    fn weights_spread_the_first_pick_and_the_seed_decides() {
        let records = [srv(10, 60, "a"), srv(10, 40, "b"), srv(10, 0, "z")];
        let firsts: Vec<String> = (0..10_000u64)
            .map(|s| order(&records, s)[0].target.clone())
            .collect();
        let a = firsts.iter().filter(|t| *t == "a").count();
        let z = firsts.iter().filter(|t| *t == "z").count();
        // 60/40 of the weight: about 6,000 of 10,000 first picks (±3 %), the zero
        // weight almost never (1 in 101 draws lands on 0).
        assert!((5_700..=6_300).contains(&a), "a first {a} times");
        assert!(z < 300, "weight 0 first {z} times");
        assert_eq!(order(&records, 42), order(&records, 42));
    }
}
