//! Hash maps for keys the core makes itself (its transaction branches, its timer keys).
//!
//! A `BTreeMap` keyed by our 30-byte branch strings costs a pointer chase per level:
//! with 90,000 client transactions held (2,375 calls/s, each INVITE client kept 32 s
//! by Timer M), matching a response took about 5 % of the core's time in
//! `scripts/bench-calls.sh`. A hash map looks a key up in one probe.
//!
//! The hasher has fixed keys, not `RandomState`: `sip-core` takes no OS randomness.
//! The map offers no iteration at all (the workspace bans `HashMap` because its order
//! would leak into outputs), so its order can never show. Fixed keys would let a
//! peer who knows them pick colliding keys, so these maps are only for keys that we
//! generate (a peer's response can only *look up* a branch of ours, never insert one);
//! maps keyed by what a peer chooses (its server transactions) stay `BTreeMap`s.

#![allow(clippy::disallowed_types)] // see above: a HashMap that cannot be iterated

use std::borrow::Borrow;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

/// A hash map for keys the core generates, without iteration; see the module
/// documentation.
#[derive(Debug, Clone)]
pub struct OwnKeyMap<K, V>(HashMap<K, V, BuildHasherDefault<DefaultHasher>>);

impl<K, V> Default for OwnKeyMap<K, V> {
    fn default() -> Self {
        Self(HashMap::default())
    }
}

impl<K: Hash + Eq, V> OwnKeyMap<K, V> {
    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(key)
    }

    /// The value under `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get_mut(key)
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.0.insert(key, value)
    }

    /// Takes the value under `key` out.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.remove(key)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}
