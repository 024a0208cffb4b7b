//! `stream_frame`: [`sip_core::message::Framer`] on arbitrary byte streams, cut into
//! arbitrary reads.
//!
//! The input's first byte chooses the cuts (a read ends after every `1 + (b % 61)`-th
//! byte for the following bytes `b`, cycling), the rest is the stream. The property:
//! however a stream arrives, a connection reads the same messages from it as when the
//! whole stream is there at once, and it fails (closes) exactly when that does.
//! Keep-alives are compared by count (a ping is two pongs' worth of CRLF): where a read
//! ends inside a run of CRLFs moves the pairing, as the framer's doc says, not the bytes.

use sip_core::message::{Framed, Framer};

/// Frames `data[1..]` whole and in reads chosen by `data[0]`, and compares.
pub fn run(data: &[u8]) {
    let Some((&pattern, stream)) = data.split_first() else {
        return;
    };
    let whole = frame(&[stream]);
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut step = pattern;
    while !rest.is_empty() {
        let n = (1 + usize::from(step % 61)).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
        step = step.wrapping_mul(31).wrapping_add(7);
    }
    let cut = frame(&chunks);
    // A run of CRLFs at the end that is still arriving (`CRLF CR`) is read whole as a
    // ping to come, in pieces as a pong already read: the same bytes, one pong apart.
    let pongs = |frames: &[Framed]| frames.iter().filter(|f| **f == Framed::Pong).count();
    assert!(
        pongs(&cut.0).abs_diff(pongs(&whole.0)) <= 1,
        "reading the stream in pieces gave {} keep-alive CRLFs, whole {}",
        pongs(&cut.0),
        pongs(&whole.0)
    );
    let messages = |(frames, failed): (Vec<Framed>, bool)| {
        let kept: Vec<Framed> = frames.into_iter().filter(|f| *f != Framed::Pong).collect();
        (kept, failed)
    };
    assert_eq!(
        messages(cut),
        messages(whole),
        "reading the stream in pieces gave other messages than reading it whole"
    );
}

/// The frames read (pings as two pongs) and whether the framer failed.
fn frame(chunks: &[&[u8]]) -> (Vec<Framed>, bool) {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.pop() {
                Ok(Some(Framed::Ping)) => out.extend([Framed::Pong, Framed::Pong]),
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}
