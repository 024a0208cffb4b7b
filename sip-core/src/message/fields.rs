//! [`Headers`]: a message's header fields, held in one buffer.
//!
//! A parsed message owns its header text once, with each field a pair of spans into
//! it, instead of two `String`s per field: a message of fifteen headers then costs two
//! allocations, not thirty — what lets the parser read a message once at over a
//! million messages per second per core (issue 9, §4). Known names are not stored at
//! all: they point at the canonical spelling.

use super::names::{canonical_name, known_name};
use std::fmt;

/// A field's name: a known one by its canonical spelling, else a span of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Known(&'static str),
    Text { start: u32, end: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    name: Name,
    start: u32,
    end: u32,
}

/// Header fields in order, names in their canonical long form (`v` → `Via`).
///
/// One entry per header line: a line that carries several comma-separated values (two
/// Via, two Contact bindings) stays one entry, because a naive comma split breaks
/// values such as `WWW-Authenticate`. The readers split where the grammar allows it.
/// Values are trimmed, unfolded and free of control characters other than HTAB.
#[derive(Clone, Default)]
pub struct Headers {
    text: String,
    fields: Vec<Field>,
}

impl Headers {
    /// Empty, with room for `fields` fields of `text` bytes in all.
    pub fn with_capacity(fields: usize, text: usize) -> Self {
        Self {
            text: String::with_capacity(text),
            fields: Vec::with_capacity(fields),
        }
    }

    /// Appends a field; `name` is stored in its canonical form.
    pub fn push(&mut self, name: &str, value: &str) {
        let name = match known_name(name) {
            Some(known) => Name::Known(known),
            None => {
                let (start, end) = self.append(name);
                Name::Text { start, end }
            }
        };
        let (start, end) = self.append(value);
        self.fields.push(Field { name, start, end });
    }

    /// Continues the last field's value with `more` (a folded line), joined by one
    /// space. Nothing happens when there is no field yet.
    pub(crate) fn continue_last(&mut self, more: &str) {
        let Some(last) = self.fields.last() else {
            return;
        };
        if more.is_empty() {
            return;
        }
        // The last value is the end of the text, so it grows in place.
        debug_assert_eq!(last.end as usize, self.text.len());
        if last.end > last.start {
            self.text.push(' ');
        }
        self.text.push_str(more);
        let end = span_end(&self.text);
        if let Some(last) = self.fields.last_mut() {
            last.end = end;
        }
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The number of fields (header lines).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Every field as `(name, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|f| (self.name_of(f), self.span(f.start, f.end)))
    }

    /// The fields called `name` (any form), as iterated values.
    pub(crate) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let wanted = canonical_name(name);
        self.fields
            .iter()
            .filter(move |f| self.name_of(f).eq_ignore_ascii_case(wanted))
            .map(|f| self.span(f.start, f.end))
    }

    /// Keeps only the fields for which `keep(name, value)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let mut fields = std::mem::take(&mut self.fields);
        fields.retain(|f| keep(self.name_of(f), self.span(f.start, f.end)));
        self.fields = fields;
    }

    /// Replaces the value of every field called `name` by `value`, or appends one.
    pub fn set(&mut self, name: &str, value: &str) {
        let wanted = canonical_name(name).to_owned();
        self.retain(|n, _| !n.eq_ignore_ascii_case(&wanted));
        self.push(&wanted, value);
    }

    fn name_of(&self, f: &Field) -> &str {
        match f.name {
            Name::Known(n) => n,
            Name::Text { start, end } => self.span(start, end),
        }
    }

    fn span(&self, start: u32, end: u32) -> &str {
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    fn append(&mut self, s: &str) -> (u32, u32) {
        let start = span_end(&self.text);
        self.text.push_str(s);
        (start, span_end(&self.text))
    }
}

/// The text's length as a span bound. Messages are at most 64 KiB; built ones are
/// far below 4 GiB, so this saturates only on misuse, and then spans merely shorten.
fn span_end(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Self::default();
        for (n, v) in iter {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_order_names_and_values() {
        let mut h: Headers = [("v", "SIP/2.0/UDP h"), ("X-Custom", "1"), ("call-id", "c")]
            .into_iter()
            .collect();
        h.continue_last("more");
        let all: Vec<(&str, &str)> = h.iter().collect();
        assert_eq!(
            all,
            [
                ("Via", "SIP/2.0/UDP h"),
                ("X-Custom", "1"),
                ("Call-ID", "c more")
            ]
        );
        h.set("X-CUSTOM", "2");
        h.retain(|n, _| n != "Via");
        let all: Vec<(&str, &str)> = h.iter().collect();
        assert_eq!(all, [("Call-ID", "c more"), ("X-CUSTOM", "2")]);
        assert_eq!(h.named("i").collect::<Vec<_>>(), ["c more"]);
        let mut empty_first = Headers::default();
        empty_first.push("Subject", "");
        empty_first.continue_last("folded");
        assert_eq!(empty_first.iter().next(), Some(("Subject", "folded")));
        assert_eq!(
            format!("{h:?}"),
            r#"[("Call-ID", "c more"), ("X-CUSTOM", "2")]"#
        );
    }
}
