//! Archives: `.zip` (and `.jar`, `.war`, `.whl`, `.nupkg`), `.tar`,
//! `.tar.gz`/`.tgz` and `.gz` members are scanned as files of their own,
//! reported as `archive.zip!/inner/.env`, archives inside archives too.
//! Limits keep an archive bomb from costing more than a large file: total
//! bytes expanded per archive, each member's size, and the nesting depth.
//! A member larger than its budget is scanned up to the budget (a secret on
//! the first line of a 90 MiB log is found), and whatever a limit kept
//! unread makes the scan incomplete: exit 2 and said in every report,
//! never a silent clean result.

use std::io::{Cursor, Read};

use crate::blob::{BlobScanner, Outcome};
use crate::finding::Finding;

/// How an archive is packed, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Tar,
    TarGz,
    Gz,
}

/// Bytes expanded from one archive (all members, all depths).
pub const MAX_TOTAL: u64 = 256 << 20;
/// Bytes of one member.
pub const MAX_MEMBER: u64 = 64 << 20;
/// Archives inside archives, at most this deep.
pub const MAX_DEPTH: usize = 3;
/// An archive file larger than this is not opened.
pub const MAX_ARCHIVE: u64 = 512 << 20;

/// Pure: the archive kind a path names, if any.
pub fn kind_of(path: &str) -> Option<Kind> {
    let lower = path.to_ascii_lowercase();
    let ends = |s: &str| lower.ends_with(s);
    if ends(".tar.gz") || ends(".tgz") {
        Some(Kind::TarGz)
    } else if ends(".tar") {
        Some(Kind::Tar)
    } else if ends(".gz") {
        Some(Kind::Gz)
    } else if [".zip", ".jar", ".war", ".ear", ".whl", ".nupkg", ".apk"]
        .iter()
        .any(|e| ends(e))
    {
        Some(Kind::Zip)
    } else {
        None
    }
}

/// What scanning an archive came to.
#[derive(Debug, Default)]
pub struct Scanned {
    pub members: u64,
    pub bytes: u64,
    pub binary_skipped: Vec<String>,
    pub warnings: Vec<String>,
    /// What a limit kept unread: the scan of these is incomplete.
    pub incomplete: Vec<String>,
}

/// Scans the archive `data` named `path`, calling `sink` for findings in
/// its members (their paths `path!/member`).
pub fn scan(
    kind: Kind,
    data: &[u8],
    path: &str,
    scanner: &mut BlobScanner<'_>,
    sink: &mut dyn FnMut(Finding),
) -> Scanned {
    let mut state = Walk {
        scanner,
        sink,
        out: Scanned::default(),
        expanded: 0,
    };
    state.archive(kind, data, path, 1);
    state.out
}

struct Walk<'a, 'd> {
    scanner: &'a mut BlobScanner<'d>,
    sink: &'a mut dyn FnMut(Finding),
    out: Scanned,
    expanded: u64,
}

impl Walk<'_, '_> {
    fn archive(&mut self, kind: Kind, data: &[u8], path: &str, depth: usize) {
        let result = match kind {
            Kind::Zip => self.zip(data, path, depth),
            Kind::Tar => self.tar(Cursor::new(data), path, depth),
            Kind::TarGz => self.tar(flate2::read::GzDecoder::new(data), path, depth),
            Kind::Gz => {
                let inner = path
                    .rsplit('/')
                    .next()
                    .unwrap_or(path)
                    .trim_end_matches(".gz")
                    .trim_end_matches(".GZ");
                self.member(
                    flate2::read::GzDecoder::new(data),
                    &format!("{path}!/{inner}"),
                    depth,
                )
            }
        };
        if let Err(e) = result {
            self.out
                .incomplete
                .push(format!("{path}: not read to the end: {e}"));
        }
    }

    fn zip(&mut self, data: &[u8], path: &str, depth: usize) -> Result<(), String> {
        let mut zip = zip::ZipArchive::new(Cursor::new(data)).map_err(|e| e.to_string())?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
            if entry.is_dir() {
                continue;
            }
            let name = format!("{path}!/{}", entry.name());
            self.member(&mut entry, &name, depth)?;
        }
        Ok(())
    }

    fn tar(&mut self, reader: impl Read, path: &str, depth: usize) -> Result<(), String> {
        let mut tar = tar::Archive::new(reader);
        for entry in tar.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = format!(
                "{path}!/{}",
                entry.path().map_err(|e| e.to_string())?.display()
            );
            self.member(&mut entry, &name, depth)?;
        }
        Ok(())
    }

    /// Reads one member up to its budget; scans what was read, or opens it
    /// as an archive when it is one and the depth allows. A member cut at
    /// the budget is still scanned that far, and the cut is recorded as
    /// incomplete; once the archive's budget is spent, reading stops.
    fn member(&mut self, reader: impl Read, name: &str, depth: usize) -> Result<(), String> {
        let budget = MAX_MEMBER.min(MAX_TOTAL.saturating_sub(self.expanded));
        if budget == 0 {
            return Err(format!(
                "{name} and what follows: the archive expands past {} MiB",
                MAX_TOTAL >> 20
            ));
        }
        let mut bytes = Vec::new();
        reader
            .take(budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        if bytes.len() as u64 > budget {
            bytes.truncate(budget as usize);
            self.out.incomplete.push(format!(
                "{name}: only the first {} were scanned (limits: {} MiB per member, {} MiB per archive)",
                size_text(budget),
                MAX_MEMBER >> 20,
                MAX_TOTAL >> 20
            ));
        }
        self.expanded += bytes.len() as u64;
        self.out.members += 1;
        if let Some(kind) = kind_of(name) {
            if depth < MAX_DEPTH {
                self.archive(kind, &bytes, name, depth + 1);
            } else {
                self.out.incomplete.push(format!(
                    "{name}: not opened, archives nested deeper than {MAX_DEPTH}"
                ));
            }
            return Ok(());
        }
        match self.scanner.scan(&bytes[..], name, &mut *self.sink) {
            Ok(Outcome::Scanned { bytes }) => self.out.bytes += bytes,
            Ok(Outcome::Binary) => self.out.binary_skipped.push(format!("{name} (binary)")),
            Err(e) => self.out.warnings.push(format!("skipped {name}: {e}")),
        }
        Ok(())
    }
}

/// Scans the archive into a source's output (members count as inputs);
/// `tag` marks each finding (e.g. with its blob).
pub fn scan_into(
    kind: Kind,
    data: &[u8],
    path: &str,
    scanner: &mut BlobScanner<'_>,
    out: &mut super::SourceOutput,
    tag: &dyn Fn(&mut Finding),
) {
    let findings = &mut out.findings;
    let scanned = scan(kind, data, path, scanner, &mut |mut f| {
        tag(&mut f);
        findings.push(f)
    });
    out.stats.scanned += scanned.members - scanned.binary_skipped.len() as u64;
    out.stats.bytes += scanned.bytes;
    out.stats.binary_skipped += scanned.binary_skipped.len() as u64;
    out.skipped.extend(scanned.binary_skipped);
    out.warnings.extend(scanned.warnings);
    out.incomplete.extend(scanned.incomplete);
}

/// Pure: a byte count as people read it (no "0 MiB" for what is left of
/// a budget).
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        let cases = [
            (64 << 20, "64 MiB"),
            ((1 << 20) + 5, "1 MiB"),
            (300 << 10, "300 KiB"),
            (12, "12 bytes"),
        ];
        for (bytes, want) in cases {
            assert_eq!(size_text(bytes), want);
        }
    }

    #[test]
    fn archive_kinds_come_from_the_name() {
        let cases = [
            ("a/b.zip", Some(Kind::Zip)),
            ("lib.JAR", Some(Kind::Zip)),
            ("x.tar.gz", Some(Kind::TarGz)),
            ("x.tgz", Some(Kind::TarGz)),
            ("x.tar", Some(Kind::Tar)),
            ("app.log.gz", Some(Kind::Gz)),
            ("notes.txt", None),
            ("gzip.rs", None),
        ];
        for (path, want) in cases {
            assert_eq!(kind_of(path), want, "{path}");
        }
    }
}
