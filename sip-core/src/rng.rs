//! The core's only source of randomness: a seeded ChaCha generator.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Seeded identifier and jitter generator. Every Call-ID, tag, branch, cnonce and jitter
/// draw comes from here, so the same seed gives the same run byte for byte.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: ChaCha8Rng,
}

/// Lowercase hex, not all of `[0-9A-Za-z]`: a peer that finds a header by substring
/// must not find one inside our tags. SIPp reads a response's CSeq method with
/// `strstr(msg, "CSeq")`, and a To tag of ours, `GMPvI7LCSeqpUq91`, made it read
/// "pUq91" as the method, count our 180 and 200 as unexpected and fail the call: one
/// call in ~400,000 in the call benchmark (issue 9 §4). No header name or its compact
/// form can be spelled inside a token of hex digits. 16 hex digits are 64 random bits,
/// twice what RFC 3261 §19.3 asks of a tag.
const ALPHABET: &[u8; 16] = b"0123456789abcdef";

impl IdGen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A random token of `len` lowercase hex digits (token-safe in every SIP header, see
    /// [`ALPHABET`]), 4 random bits each.
    pub fn token(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        let mut bits = 0u64;
        for i in 0..len {
            if i % 16 == 0 {
                bits = self.rng.next_u64();
            }
            let idx = (bits & 0xf) as usize;
            bits >>= 4;
            out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'0')));
        }
        out
    }

    /// A Via branch with the RFC 3261 magic cookie (88 random bits).
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.token(22))
    }

    /// A From/To tag.
    pub fn tag(&mut self) -> String {
        self.token(16)
    }

    /// A Call-ID local part (the caller appends `@host` if it wants one): 128 random
    /// bits.
    pub fn call_id(&mut self) -> String {
        self.token(32)
    }

    /// A digest client nonce.
    pub fn cnonce(&mut self) -> String {
        self.token(16)
    }

    /// A uniform integer in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for jitter, and deterministic.
        ((u128::from(self.rng.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        assert_eq!(a.branch(), b.branch());
        assert_eq!(a.call_id(), b.call_id());
        let mut c = IdGen::new(8);
        assert_ne!(IdGen::new(7).branch(), c.branch());
    }

    #[test]
    fn tokens_are_lowercase_hex_and_sized() {
        let mut g = IdGen::new(1);
        let t = g.token(40);
        assert_eq!(t.len(), 40);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // Every digit turns up: the draw uses all 16.
        let many = g.token(4096);
        assert!(ALPHABET.iter().all(|d| many.as_bytes().contains(d)));
        assert_eq!(g.tag().len(), 16);
        assert_eq!(g.call_id().len(), 32);
        assert!(g.branch().starts_with("z9hG4bK"));
        for _ in 0..1000 {
            assert!(g.below(10) < 10);
            let u = g.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(g.below(0), 0);
    }
}
