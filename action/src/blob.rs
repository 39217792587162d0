//! Scanning one input (file, git blob, stdin) of any size in bounded memory:
//! it is read in chunks that overlap by more than any credential and its
//! context, so memory stays flat for a 100 MB single-line file.

use std::io::{self, Read};

use crate::detect::{Detection, Detector};
use crate::finding::Finding;

/// Bytes scanned at a time.
pub const CHUNK: usize = 4 << 20;
/// Bytes carried from one chunk into the next.
const OVERLAP: usize = 8 << 10;
/// A NUL in the first this-many bytes marks a binary file.
const BINARY_SNIFF: usize = 8 << 10;

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Scanned { bytes: u64 },
    Binary,
}

/// Per-thread scanning state, reused across inputs so scanning allocates
/// nothing per file or per line.
#[derive(Debug)]
pub struct BlobScanner<'d> {
    detector: &'d Detector,
    buf: Vec<u8>,
    detections: Vec<Detection>,
    /// Findings waived by an inline `keyguard:allow`.
    pub waived_inline: usize,
    /// Keep the waived findings in `waived` (range mode lists the waivers
    /// a change adds).
    pub keep_waived: bool,
    pub waived: Vec<Finding>,
}

impl<'d> BlobScanner<'d> {
    pub fn new(detector: &'d Detector) -> Self {
        BlobScanner {
            detector,
            buf: Vec::new(),
            detections: Vec::new(),
            waived_inline: 0,
            keep_waived: false,
            waived: Vec::new(),
        }
    }

    /// Scans `reader`, calling `sink` for each finding. `path` is reported
    /// and used as context.
    pub fn scan(
        &mut self,
        mut reader: impl Read,
        path: &str,
        sink: &mut dyn FnMut(Finding),
    ) -> io::Result<Outcome> {
        if self.buf.capacity() < CHUNK + OVERLAP {
            self.buf.reserve(CHUNK + OVERLAP - self.buf.len());
        }
        self.buf.clear();
        let mut base_line = 0usize;
        let mut total = 0u64;
        let mut first = true;
        loop {
            let before = self.buf.len();
            (&mut reader)
                .take((CHUNK + OVERLAP - before) as u64)
                .read_to_end(&mut self.buf)?;
            let read = self.buf.len() - before;
            total += read as u64;
            let eof = self.buf.len() < CHUNK + OVERLAP;
            if first {
                first = false;
                let sniff = &self.buf[..self.buf.len().min(BINARY_SNIFF)];
                if memchr::memchr(0, sniff).is_some() {
                    return match crate::decode::utf16::detect(sniff) {
                        Some(order) => self.scan_utf16(reader, order, path, sink),
                        None => Ok(Outcome::Binary),
                    };
                }
            }
            // Report a detection in the chunk that holds its start, once.
            let report_until = if eof {
                usize::MAX
            } else {
                self.buf.len() - OVERLAP
            };
            self.detections.clear();
            self.detector.detect(&self.buf, path, &mut self.detections);
            self.report(path, base_line, report_until, sink);
            if eof {
                break;
            }
            let keep_from = self.buf.len() - OVERLAP;
            base_line += memchr::memchr_iter(b'\n', &self.buf[..keep_from]).count();
            self.buf.drain(..keep_from);
        }
        Ok(Outcome::Scanned { bytes: total })
    }

    /// This chunk's detections that start before `report_until` (the
    /// carried bytes were not reported by the previous chunk), as
    /// findings; inline-waived ones are counted (and kept if asked).
    fn report(
        &mut self,
        path: &str,
        base_line: usize,
        report_until: usize,
        sink: &mut dyn FnMut(Finding),
    ) {
        for d in self.detections.drain(..) {
            if d.start >= report_until {
                continue;
            }
            let rule = &self.detector.rules.rules[d.rule];
            let finding = Finding {
                rule_id: rule.spec.id.clone(),
                rule_name: match &d.label {
                    Some(label) => format!("{} ({})", rule.spec.name, label.owner),
                    None => rule.spec.name.clone(),
                },
                next_step: d.label.as_ref().map(|l| l.next_step.clone()),
                credential: d.credential,
                path: path.to_string(),
                line: base_line + d.line,
                column: d.column,
                blob: None,
                commit: None,
                value: d.value,
                verification: Default::default(),
                verification_reason: None,
            };
            if d.allowed_inline {
                self.waived_inline += 1;
                if self.keep_waived {
                    self.waived.push(finding);
                }
                continue;
            }
            sink(finding);
        }
    }

    /// A UTF-16 text file, streamed through a converter and scanned as
    /// UTF-8 to its end (the chunk already read comes first).
    fn scan_utf16(
        &mut self,
        reader: impl Read,
        order: crate::decode::utf16::Order,
        path: &str,
        sink: &mut dyn FnMut(Finding),
    ) -> io::Result<Outcome> {
        let head = std::mem::take(&mut self.buf);
        let mut utf8 =
            crate::decode::utf16::Utf16Reader::new(io::Cursor::new(head).chain(reader), order);
        // As a trait object: `scan` generic over a reader that holds its own
        // reader type would never stop instantiating.
        let as_text: &mut dyn Read = &mut utf8;
        self.scan(as_text, path, sink)?;
        Ok(Outcome::Scanned {
            bytes: utf8.consumed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEARER: &str = "AAAAAAAAAAAAAAAAAAAAAGzvAmwufUxAAAAAAAbvJDCTbyvHNsG9eh6Yo4%2Bgfqrc5Xl%3DrWi0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3hDavJA7"; // keyguard:allow

    /// Lines of filler, then `BEARER_TOKEN=…` placed so that the token
    /// starts `offset` bytes from the first chunk's end (negative: before).
    fn file_with_token_at(offset: isize) -> (Vec<u8>, usize) {
        let line = format!("BEARER_TOKEN={BEARER}\n");
        let token_at = (CHUNK as isize + offset) as usize;
        let lead = token_at - "BEARER_TOKEN=".len();
        let mut buf = Vec::with_capacity(token_at + line.len() + 100);
        let filler = b"# nothing here, just a line of filler text.\n";
        while buf.len() + filler.len() <= lead {
            buf.extend_from_slice(filler);
        }
        buf.resize(lead - 1, b'x');
        buf.push(b'\n');
        let lines_before = memchr::memchr_iter(b'\n', &buf).count();
        buf.extend_from_slice(line.as_bytes());
        // Always a second chunk.
        while buf.len() < CHUNK + 2 * OVERLAP {
            buf.extend_from_slice(filler);
        }
        (buf, lines_before + 1)
    }

    fn findings(bytes: &[u8]) -> Vec<Finding> {
        let detector = Detector::builtin();
        let mut scanner = BlobScanner::new(&detector);
        let mut found = Vec::new();
        let outcome = scanner
            .scan(bytes, "big.env", &mut |f| found.push(f))
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Scanned {
                bytes: bytes.len() as u64
            }
        );
        found
    }

    #[test]
    fn a_credential_at_any_place_around_a_chunk_boundary_is_reported_once_on_its_line() {
        let overlap = OVERLAP as isize;
        for offset in [
            -300,
            -60,
            -1,
            0,
            1,
            60,
            overlap - 200,
            overlap - 1,
            overlap,
            overlap + 1,
        ] {
            let (bytes, line) = file_with_token_at(offset);
            let found = findings(&bytes);
            assert_eq!(found.len(), 1, "offset {offset}: {found:?}");
            assert_eq!(found[0].line, line, "offset {offset}");
            assert_eq!(
                found[0].value.expose(),
                BEARER.as_bytes(),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_nul_early_on_is_binary_and_utf16_is_text() {
        let detector = Detector::builtin();
        let mut scanner = BlobScanner::new(&detector);
        let outcome = scanner
            .scan(
                &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR BEARER_TOKEN="[..],
                "x.png",
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(outcome, Outcome::Binary);
        let text = format!("BEARER_TOKEN={BEARER}\r\n");
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut found = Vec::new();
        let outcome = scanner
            .scan(&utf16[..], "x.ps1", &mut |f| found.push(f))
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Scanned {
                bytes: utf16.len() as u64
            }
        );
        assert_eq!(found.len(), 1);
    }
}
