//! UTF-16 text files (PowerShell and Visual Studio write them, with or
//! without a byte-order mark) look binary to a NUL sniff; they are turned
//! into UTF-8 and scanned like any other text, streamed, so a file of any
//! size is read to its end in bounded memory.

use std::io::{self, Read};

/// The byte order of UTF-16 text, if `head` (a file's start) is that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Little,
    Big,
}

/// Pure: whether `head` starts UTF-16 text: a byte-order mark, or mostly
/// ASCII characters with a NUL in every other byte.
pub fn detect(head: &[u8]) -> Option<Order> {
    match head {
        [0xFF, 0xFE, ..] => return Some(Order::Little),
        [0xFE, 0xFF, ..] => return Some(Order::Big),
        _ => {}
    }
    let pairs = head.len() / 2;
    if pairs < 4 {
        return None;
    }
    let count = |odd: usize| {
        head.chunks_exact(2)
            .filter(|p| p[odd] == 0 && p[1 - odd] != 0 && p[1 - odd].is_ascii())
            .count()
    };
    let (little, big) = (count(1), count(0));
    if little * 10 >= pairs * 9 {
        Some(Order::Little)
    } else if big * 10 >= pairs * 9 {
        Some(Order::Big)
    } else {
        None
    }
}

/// UTF-16 bytes read as UTF-8, a piece at a time: a unit split between
/// two reads and a surrogate pair split between two pieces are carried
/// over; a byte-order mark at the start is dropped.
#[derive(Debug)]
pub struct Utf16Reader<R> {
    inner: R,
    order: Order,
    /// Input not yet decoded: an odd byte, or a high surrogate's two.
    carry: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    at_start: bool,
    eof: bool,
    /// UTF-16 bytes read so far.
    pub consumed: u64,
}

/// UTF-16 bytes decoded per piece.
const PIECE: usize = 64 << 10;

impl<R: Read> Utf16Reader<R> {
    pub fn new(inner: R, order: Order) -> Self {
        Utf16Reader {
            inner,
            order,
            carry: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            at_start: true,
            eof: false,
            consumed: 0,
        }
    }

    /// Decodes the next piece into `out`; false at the end of input.
    fn refill(&mut self) -> io::Result<bool> {
        let mut input = std::mem::take(&mut self.carry);
        let before = input.len();
        (&mut self.inner)
            .take(PIECE as u64)
            .read_to_end(&mut input)?;
        self.consumed += (input.len() - before) as u64;
        self.eof = input.len() - before == 0;
        if input.is_empty() {
            return Ok(false);
        }
        // Keep an odd byte, and a high surrogate that may pair with the
        // next piece, for the next piece; at the end decode what is left.
        let mut keep_from = input.len() - input.len() % 2;
        if !self.eof && keep_from >= 2 {
            let last = unit(&input[keep_from - 2..keep_from], self.order);
            if (0xD800..0xDC00).contains(&last) {
                keep_from -= 2;
            }
        }
        if self.eof {
            keep_from = input.len() - input.len() % 2;
        }
        self.carry = input[keep_from..].to_vec();
        let mut text = to_utf8_unmarked(&input[..keep_from], self.order);
        if self.at_start && !text.is_empty() {
            self.at_start = false;
            if let Some(rest) = text.strip_prefix("\u{FEFF}".as_bytes()) {
                text = rest.to_vec();
            }
        }
        self.out = text;
        self.out_pos = 0;
        Ok(!self.eof || !self.out.is_empty())
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            if self.eof && self.carry.is_empty() || !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// One UTF-16 code unit from its two bytes.
fn unit(pair: &[u8], order: Order) -> u16 {
    match order {
        Order::Little => u16::from_le_bytes([pair[0], pair[1]]),
        Order::Big => u16::from_be_bytes([pair[0], pair[1]]),
    }
}

/// UTF-16 bytes as UTF-8, unpaired halves replaced, a mark kept.
fn to_utf8_unmarked(bytes: &[u8], order: Order) -> Vec<u8> {
    let units = bytes.chunks_exact(2).map(|p| unit(p, order));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect::<String>()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_converts_across_piece_boundaries() {
        // A surrogate pair (an emoji) and an odd split at every place
        // around the piece boundary.
        let text: String = "TWITTER_API_KEY=abc 😀 ".repeat(PIECE / 10);
        for order in [Order::Little, Order::Big] {
            let bytes = utf16(&text, order, true);
            let mut out = Vec::new();
            let mut reader = Utf16Reader::new(OddReads(&bytes[..], 3), order);
            reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, text.as_bytes(), "{order:?}");
            assert_eq!(reader.consumed, bytes.len() as u64);
        }
    }

    /// A reader that returns at most `n` bytes a call, like a pipe.
    struct OddReads<'a>(&'a [u8], usize);

    impl Read for OddReads<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn utf16(text: &str, order: Order, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
        for u in units {
            out.extend(match order {
                Order::Little => u.to_le_bytes(),
                Order::Big => u.to_be_bytes(),
            });
        }
        out
    }

    #[test]
    fn utf16_text_is_recognised_and_converted() {
        let text = "TWITTER_API_KEY=abc\r\n";
        for (order, bom) in [
            (Order::Little, true),
            (Order::Little, false),
            (Order::Big, true),
            (Order::Big, false),
        ] {
            let bytes = utf16(text, order, bom);
            assert_eq!(detect(&bytes), Some(order), "{order:?} bom={bom}");
            let mut converted = Vec::new();
            Utf16Reader::new(&bytes[..], order)
                .read_to_end(&mut converted)
                .unwrap();
            assert_eq!(converted, text.as_bytes(), "{order:?} bom={bom}");
        }
        let cases: [(&str, &[u8]); 3] = [
            ("plain ASCII", b"plain text here"),
            ("a PNG", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            ("too short", b"a\0"),
        ];
        for (what, bytes) in cases {
            assert_eq!(detect(bytes), None, "{what}");
        }
    }
}
