//! B-tree maps kept dense. Filled in key order (statuses, bindings and names arrive in
//! the order of the provider list), a `BTreeMap` keeps its nodes just over half full:
//! each split leaves six of eleven slots behind it. Built from sorted entries, its nodes
//! are full. At 100,000 providers that is about 40 bytes per provider in the store and
//! 25 in the logger's id → name map (issue 8, "Memory").

use std::collections::BTreeMap;

/// Rebuilds a map from its sorted entries once it has grown by a quarter since the last
/// rebuild: a few O(n) rebuilds while 100,000 providers arrive, none after.
#[derive(Debug, Default)]
pub struct Densify {
    /// How many entries the map had when it was last rebuilt.
    rebuilt_at: usize,
}

/// Smaller maps are not worth a rebuild.
const MIN_LEN: usize = 1024;

impl Densify {
    /// Rebuilds `map` if it has grown enough; returns whether it did.
    pub fn after_growth<K: Ord, V>(&mut self, map: &mut BTreeMap<K, V>) -> bool {
        let len = map.len();
        if len < MIN_LEN || len < self.rebuilt_at + self.rebuilt_at / 4 {
            return false;
        }
        *map = std::mem::take(map).into_iter().collect();
        self.rebuilt_at = len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_after_a_quarter_of_growth_and_keeps_every_entry() {
        let mut d = Densify::default();
        let mut m: BTreeMap<u32, u32> = (0..1000).map(|i| (i, i * 2)).collect();
        assert!(!d.after_growth(&mut m), "below the minimum size");
        m.extend((1000..4000).map(|i| (i, i * 2)));
        assert!(d.after_growth(&mut m));
        m.extend((4000..4999).map(|i| (i, i * 2)));
        assert!(!d.after_growth(&mut m), "grown by less than a quarter");
        m.insert(4999, 9998);
        assert!(d.after_growth(&mut m), "5,000 = 4,000 + a quarter");
        assert_eq!(m.len(), 5000);
        assert!(m.iter().all(|(k, v)| *v == k * 2));
    }
}
