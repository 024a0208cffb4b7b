//! A byte tape that the fuzzer writes and the harness reads choices from (str0m's fuzz
//! `Rng`): every read consumes bytes, and an exhausted tape answers `None`, which ends
//! the run. Shrinking the input towards fewer bytes therefore shrinks the scenario.

/// Reads choices off fuzzer bytes.
#[derive(Debug, Clone)]
pub struct Tape<'a> {
    data: &'a [u8],
}

impl<'a> Tape<'a> {
    /// A tape over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> Option<u16> {
        let lo = self.u8()?;
        let hi = self.u8()?;
        Some(u16::from_le_bytes([lo, hi]))
    }

    /// The next `n` bytes (fewer is `None`: a half-read choice ends the run).
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        Some(taken)
    }

    /// A byte reduced to an index below `len` (`len` must be at least 1).
    pub fn index(&mut self, len: usize) -> Option<usize> {
        Some(usize::from(self.u8()?) % len.max(1))
    }
}

/// Writes the bytes that a [`Tape`] reads back as the same choices: used to build seeds.
#[derive(Debug, Default, Clone)]
pub struct TapeWriter {
    out: Vec<u8>,
}

impl TapeWriter {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one byte.
    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.out.push(b);
        self
    }

    /// Appends two bytes, little-endian.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }

    /// The tape.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written_and_then_ends() {
        let mut w = TapeWriter::new();
        w.u8(7).u16(0xBEEF).bytes(b"abc");
        let bytes = w.finish();
        let mut t = Tape::new(&bytes);
        assert_eq!(t.u8(), Some(7));
        assert_eq!(t.u16(), Some(0xBEEF));
        assert_eq!(t.bytes(4), None, "a short read must end the run");
        assert_eq!(t.bytes(3), Some(&b"abc"[..]));
        assert!(t.is_empty());
        assert_eq!(t.u8(), None);
        assert_eq!(t.index(5), None);
    }
}
