//! Symbolic ids: random tokens (Call-IDs, branches, tags, nonces…) are printed as
//! `call#1`, `branch#3`, numbered in first-seen order, so a change in the order of
//! random draws does not churn every snapshot and traces of two runs compare by shape.

use std::collections::BTreeMap;

/// The renamer of one trace.
#[derive(Debug, Default, Clone)]
pub struct Names {
    seen: BTreeMap<(&'static str, String), usize>,
    next: BTreeMap<&'static str, usize>,
}

impl Names {
    /// The symbolic name of `raw` in `class` (`call`, `branch`, `tag`, `nonce`…).
    pub fn name(&mut self, class: &'static str, raw: &str) -> String {
        if let Some(n) = self.seen.get(&(class, raw.to_owned())) {
            return format!("{class}#{n}");
        }
        let n = self.next.entry(class).or_insert(0);
        *n += 1;
        let n = *n;
        self.seen.insert((class, raw.to_owned()), n);
        format!("{class}#{n}")
    }
}
