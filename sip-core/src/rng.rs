//! The core's only source of randomness: a seeded ChaCha generator.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Seeded identifier and jitter generator. Every Call-ID, tag, branch, cnonce and jitter
/// draw comes from here, so the same seed gives the same run byte for byte.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: ChaCha8Rng,
}

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl IdGen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A random alphanumeric token of `len` characters (token-safe in every SIP header).
    pub fn token(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        for _ in 0..len {
            // 62 * 4 = 248: reject above to keep the distribution uniform.
            let byte = loop {
                let b = (self.rng.next_u32() & 0xff) as u8;
                if b < 248 {
                    break b;
                }
            };
            let idx = usize::from(byte % 62);
            out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'0')));
        }
        out
    }

    /// A Via branch with the RFC 3261 magic cookie.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.token(22))
    }

    /// A From/To tag.
    pub fn tag(&mut self) -> String {
        self.token(16)
    }

    /// A Call-ID local part (the caller appends `@host` if it wants one).
    pub fn call_id(&mut self) -> String {
        self.token(24)
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
    fn tokens_are_alphanumeric_and_sized() {
        let mut g = IdGen::new(1);
        let t = g.token(40);
        assert_eq!(t.len(), 40);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(g.branch().starts_with("z9hG4bK"));
        for _ in 0..1000 {
            assert!(g.below(10) < 10);
            let u = g.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(g.below(0), 0);
    }
}
