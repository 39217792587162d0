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
            for d in self.detections.drain(..) {
                // The carried bytes were not reported by the previous chunk.
                if d.start >= report_until {
                    continue;
                }
                let rule = &self.detector.rules.rules[d.rule];
                let finding = Finding {
                    rule_id: rule.spec.id.clone(),
                    rule_name: match &d.label {
                        Some(owner) => format!("{} ({owner})", rule.spec.name),
                        None => rule.spec.name.clone(),
                    },
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
            if eof {
                break;
            }
            let keep_from = self.buf.len() - OVERLAP;
            base_line += memchr::memchr_iter(b'\n', &self.buf[..keep_from]).count();
            self.buf.drain(..keep_from);
        }
        Ok(Outcome::Scanned { bytes: total })
    }

    /// A UTF-16 text file, read whole (up to `UTF16_LIMIT`), scanned as
    /// UTF-8.
    fn scan_utf16(
        &mut self,
        reader: impl Read,
        order: crate::decode::utf16::Order,
        path: &str,
        sink: &mut dyn FnMut(Finding),
    ) -> io::Result<Outcome> {
        let mut bytes = std::mem::take(&mut self.buf);
        reader
            .take(UTF16_LIMIT.saturating_sub(bytes.len()) as u64)
            .read_to_end(&mut bytes)?;
        let total = bytes.len() as u64;
        let text = crate::decode::utf16::to_utf8(&bytes, order);
        bytes.clear();
        self.buf = bytes;
        self.scan(&text[..], path, sink)?;
        Ok(Outcome::Scanned { bytes: total })
    }
}

/// The most of a UTF-16 file that is read (it is converted in memory).
const UTF16_LIMIT: usize = 64 << 20;
