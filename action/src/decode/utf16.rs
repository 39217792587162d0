//! UTF-16 text files (PowerShell and Visual Studio write them, with or
//! without a byte-order mark) look binary to a NUL sniff; they are turned
//! into UTF-8 and scanned like any other text.

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

/// Pure: UTF-16 bytes as UTF-8 (a mark dropped, unpaired halves replaced).
pub fn to_utf8(bytes: &[u8], order: Order) -> Vec<u8> {
    let units = bytes.chunks_exact(2).map(|p| match order {
        Order::Little => u16::from_le_bytes([p[0], p[1]]),
        Order::Big => u16::from_be_bytes([p[0], p[1]]),
    });
    let text: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    text.strip_prefix('\u{FEFF}')
        .unwrap_or(&text)
        .as_bytes()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(
                to_utf8(&bytes, order),
                text.as_bytes(),
                "{order:?} bom={bom}"
            );
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
