//! What every decoder produces and shares: a decoded view of part of a
//! buffer, the bounds on views, and the small text helpers decoders use.

use base64::Engine;

/// Views inside views, at most this deep (base64 in base64 in base64).
pub const MAX_DEPTH: u8 = 3;
/// A view larger than this is not scanned (a decompression-bomb guard).
pub const MAX_VIEW_BYTES: usize = 4 << 20;

/// A decoded view of part of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The decoder that made it.
    pub decoder: &'static str,
    /// The text as it reads once decoded.
    pub text: Vec<u8>,
    /// The span of the buffer it was decoded from: findings point there.
    pub origin: (usize, usize),
}

/// The line around `at`, at most `radius` bytes to each side.
pub fn line_around(buf: &[u8], start: usize, end: usize, radius: usize) -> (usize, usize) {
    let floor = start.saturating_sub(radius);
    let s = memchr::memrchr(b'\n', &buf[floor..start]).map_or(floor, |p| floor + p + 1);
    let ceil = (end + radius).min(buf.len());
    let e = memchr::memchr(b'\n', &buf[end..ceil]).map_or(ceil, |p| end + p);
    (s, e)
}

/// Whether decoded bytes read as text (what a credential would sit in).
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed: &[u8] = {
        let mut t = text;
        while let [rest @ .., b'='] = t {
            t = rest;
        }
        t
    };
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()
}
