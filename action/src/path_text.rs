//! Paths as text without losing a byte: a path that is not UTF-8 (a
//! Latin-1 name from an old repository) keeps each byte that is not part
//! of valid UTF-8 as `\xNN`, so a report names the file exactly and SARIF
//! can percent-encode the real bytes. Git's quoted paths (`"caf\351.env"`)
//! are unquoted to their bytes first.

/// Pure: `bytes` as text, each byte of invalid UTF-8 as `\xNN`.
pub fn from_bytes(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for b in chunk.invalid() {
            text.push_str(&format!("\\x{b:02X}"));
        }
    }
    text
}

/// Pure: the bytes `from_bytes` wrote `text` from. Only bytes from 0x80
/// up are ever escaped, so a literal `\x41` in a name stays as it is.
pub fn to_bytes(text: &str) -> Vec<u8> {
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = raw[i..]
            .strip_prefix(b"\\x")
            .and_then(|rest| rest.get(..2))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|b| *b >= 0x80);
        match escaped {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    out
}

/// Pure: a path as git prints it (`core.quotePath`): C-quoted with octal
/// escapes when it holds unusual bytes, else as it is.
pub fn unquote_git(path: &str) -> Vec<u8> {
    let Some(inner) = path.strip_prefix('"').and_then(|p| p.strip_suffix('"')) else {
        return path.as_bytes().to_vec();
    };
    let raw = inner.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 == raw.len() {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let octal = raw
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(digits) = octal {
            out.push(
                digits
                    .iter()
                    .fold(0u8, |n, d| n.wrapping_mul(8) + (d - b'0')),
            );
            i += 4;
            continue;
        }
        out.push(match raw[i + 1] {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0C,
            b'v' => 0x0B,
            other => other,
        });
        i += 2;
    }
    out
}

/// A path from its bytes as git gives them (on Unix, exactly those bytes).
#[cfg(unix)]
pub fn to_path(bytes: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).into()
}

/// A path from its bytes as git gives them (UTF-8 elsewhere than Unix).
#[cfg(not(unix))]
pub fn to_path(bytes: &[u8]) -> std::path::PathBuf {
    String::from_utf8_lossy(bytes).into_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_text() {
        let cases: [(&[u8], &str); 4] = [
            (b"src/bot.py", "src/bot.py"),
            ("café.env".as_bytes(), "café.env"),
            (b"caf\xe9.env", "caf\\xE9.env"),
            (b"a\\x41\xff", "a\\x41\\xFF"),
        ];
        for (bytes, text) in cases {
            assert_eq!(from_bytes(bytes), text);
            assert_eq!(to_bytes(text), bytes, "{text}");
        }
    }

    #[test]
    fn git_quoted_paths_unquote_to_their_bytes() {
        let cases: [(&str, &[u8]); 4] = [
            ("plain/path.txt", b"plain/path.txt"),
            ("\"caf\\351.env\"", b"caf\xe9.env"),
            ("\"tab\\there\"", b"tab\there"),
            ("\"q\\\"uote\\\\\"", b"q\"uote\\"),
        ];
        for (quoted, bytes) in cases {
            assert_eq!(unquote_git(quoted), bytes, "{quoted}");
        }
    }
}
