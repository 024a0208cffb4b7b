//! The password check: no password byte sequence may leave the core except folded into
//! a digest. Generated passwords share [`PASSWORD_MARKER`], so one substring search per
//! packet covers ten thousand accounts; hand-written ones are searched one by one.

use crate::scenario::PASSWORD_MARKER;

/// Finds passwords in bytes.
#[derive(Debug, Clone)]
pub struct SecretScan {
    needles: Vec<Vec<u8>>,
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else {
        return false;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay
            .get(i..)
            .and_then(|h| h.iter().position(|b| *b == first))
        {
            None => return false,
            Some(off) => {
                let at = i + off;
                if at > last_start {
                    return false;
                }
                if hay.get(at..at + needle.len()) == Some(needle) {
                    return true;
                }
                i = at + 1;
            }
        }
    }
    false
}

impl SecretScan {
    /// A scanner for these passwords (and anything bearing the marker).
    pub fn new<'a>(passwords: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = vec![PASSWORD_MARKER.as_bytes().to_vec()];
        for p in passwords {
            if !p.contains(PASSWORD_MARKER) && p.len() >= 4 {
                needles.push(p.as_bytes().to_vec());
            }
        }
        Self { needles }
    }

    /// Whether `bytes` hold any password.
    pub fn leaks(&self, bytes: &[u8]) -> bool {
        self.needles.iter().any(|n| contains(bytes, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_marker_and_plain_passwords() {
        let s = SecretScan::new(["hunter22", "pw~sim~1"]);
        assert!(s.leaks(b"xx pw~sim~99 yy"));
        assert!(s.leaks(b"hunter22"));
        assert!(!s.leaks(b"hunter2"));
        assert!(!contains(b"ab", b"abc"));
        assert!(contains(b"aab", b"ab"));
    }
}
