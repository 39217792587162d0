//! Values in tables, their names in a header: CSV with a header row, and
//! SQL `INSERT INTO t (a, b) VALUES ('…', '…')`. Each value is given its
//! column's name (`consumer_secret = "…"`) for the rules.

use regex::bytes::Regex;

use super::view::View;

pub const ID: &str = "table-columns";

#[derive(Debug)]
pub struct Tables {
    insert: Regex,
}

/// Splits a CSV or SQL list on commas outside quotes; spans of the fields
/// with surrounding blanks and quotes removed.
fn fields(line: &[u8], base: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut quote) = (0, None);
    for i in 0..=line.len() {
        let b = line.get(i).copied();
        match (b, quote) {
            (Some(q @ (b'"' | b'\'')), None) => quote = Some(q),
            (Some(q), Some(open)) if q == open => quote = None,
            (Some(b','), None) | (None, _) => {
                let mut s = start;
                let mut e = i;
                while s < e && matches!(line[s], b' ' | b'\t' | b'"' | b'\'' | b'\r') {
                    s += 1;
                }
                while e > s && matches!(line[e - 1], b' ' | b'\t' | b'"' | b'\'' | b'\r') {
                    e -= 1;
                }
                out.push((base + s, base + e));
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

fn push(name: &[u8], value: (usize, usize), buf: &[u8], out: &mut Vec<View>) {
    if value.1 <= value.0 || value.1 - value.0 > 512 || name.is_empty() {
        return;
    }
    let mut text: Vec<u8> = name
        .iter()
        .map(|&b| if b.is_ascii_alphanumeric() { b } else { b'_' })
        .collect();
    text.extend_from_slice(b" = \"");
    text.extend_from_slice(&buf[value.0..value.1]);
    text.extend_from_slice(b"\"\n");
    out.push(View {
        decoder: ID,
        text,
        origin: value,
    });
}

impl Tables {
    pub fn new() -> Self {
        Tables {
            insert: crate::ascii_regex::new(
                r"(?is)insert\s+into\s+[^\s(]+\s*\((?P<cols>[^)]{1,2000})\)\s*values\s*\((?P<vals>[^)]{1,4000})\)",
            )
            .unwrap(),
        }
    }

    /// Rows inside `windows` of a CSV whose first line is its header, and
    /// every `INSERT` inside them.
    pub fn views(&self, buf: &[u8], windows: &[(usize, usize)], out: &mut Vec<View>) {
        let header_end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
        let header = fields(&buf[..header_end], 0);
        // A header names columns: identifiers only (not a line of code).
        let is_csv = header.len() >= 2
            && header.iter().all(|&(s, e)| {
                e > s
                    && buf[s..e].iter().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b' ' | b'.')
                    })
            });
        for &(ws, we) in windows {
            for c in self.insert.captures_iter(&buf[ws..we]) {
                let (cols, vals) = (c.name("cols").unwrap(), c.name("vals").unwrap());
                let names = fields(cols.as_bytes(), ws + cols.start());
                let values = fields(vals.as_bytes(), ws + vals.start());
                for (n, v) in names.iter().zip(&values) {
                    push(&buf[n.0..n.1], *v, buf, out);
                }
            }
            if !is_csv {
                continue;
            }
            let mut at = ws.max(header_end + 1);
            while at < we {
                let end = memchr::memchr(b'\n', &buf[at..we]).map_or(we, |p| at + p);
                let row = fields(&buf[at..end], at);
                if row.len() == header.len() {
                    for (h, v) in header.iter().zip(&row) {
                        push(&buf[h.0..h.1], *v, buf, out);
                    }
                }
                at = end + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        Tables::new().views(text.as_bytes(), &[(0, text.len())], &mut out);
        out.iter()
            .map(|v| String::from_utf8_lossy(&v.text).trim().to_string())
            .collect()
    }

    #[test]
    fn columns_name_their_values() {
        let cases: [(&str, &str, &[&str]); 3] = [
            (
                "csv",
                "name,consumer_key\nbot,abc\n",
                &["name = \"bot\"", "consumer_key = \"abc\""],
            ),
            (
                "sql",
                "INSERT INTO apps (id, consumer_secret) VALUES (1, 'x,y');",
                &["id = \"1\"", "consumer_secret = \"x,y\""],
            ),
            ("prose is no table", "Hello world\nbye\n", &[]),
        ];
        for (what, text, want) in cases {
            assert_eq!(views(text), want, "{what}");
        }
    }
}
