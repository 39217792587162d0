//! Finding credentials in a buffer: a keyword prefilter over the whole
//! buffer, then the rules only in windows around keyword hits, then checks
//! that a match is plausibly real. Kubernetes Secret manifests are looked
//! through: their base64 `data:` values are decoded and scanned. Then the
//! decoders (`decode/`) give views of encoded text, scanned the same way
//! (to a bounded depth), with findings reported where the encoded text is.

use keyguard_credentials::{CredentialKey, SecretValue};
use regex::bytes::Regex;

use crate::decode::decode_base64;
use crate::rules::{
    is_plausible, looks_like_placeholder, ContextRequirement, Rule, RuleKind, RuleSet,
};

/// How far on each side of a keyword hit the rules look.
const WINDOW_RADIUS: usize = 1024;
/// How far on each side of a finding Twitter/X context may be mentioned.
const CONTEXT_RADIUS: usize = 2048;
/// The inline waiver.
pub const ALLOW_MARKER: &[u8] = b"keyguard:allow";

/// A credential found in a buffer. Offsets are relative to the buffer.
#[derive(Debug, Clone)]
pub struct Detection {
    pub rule: usize,
    pub credential: CredentialKey,
    pub start: usize,
    pub end: usize,
    /// 1-based line and column of `start`.
    pub line: usize,
    pub column: usize,
    pub value: SecretValue,
    /// The line carries `keyguard:allow`.
    pub allowed_inline: bool,
    /// Found in a decoded view: several values may share one span.
    pub decoded: bool,
    /// Whose it is, and what to do, for a `--known` value.
    pub label: Option<crate::known::Label>,
}

/// Compiled detection machinery; cheap to share between threads.
#[derive(Debug)]
pub struct Detector {
    pub rules: RuleSet,
    prefilter: crate::prefilter::Prefilter,
    /// The pattern rules together: one pass over a window says which of
    /// them can match there, so only those run for their captures.
    pattern_rules: (regex::bytes::RegexSet, Vec<usize>),
    x_context: Regex,
    secret_manifest: Regex,
    secret_data: Regex,
    base64_markers: Vec<(usize, Vec<u8>)>,
    /// Per rule: the whole-token shape of base64 rules.
    base64_shapes: Vec<Option<Regex>>,
    decoders: crate::decode::Decoders,
    known: Option<(crate::known::Known, usize)>,
}

impl Detector {
    pub fn new(rules: RuleSet) -> Self {
        let prefilter = crate::prefilter::Prefilter::new(&rules.keywords, &rules.markers);
        let base64_markers = rules
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.decoded_suffix.map(|s| (i, s)))
            .flat_map(|(i, s)| {
                keyguard_credentials::base64_marker_variants(s)
                    .into_iter()
                    .map(move |v| (i, v.into_bytes()))
            })
            .collect();
        let base64_shapes = rules
            .rules
            .iter()
            .map(|r| {
                r.decoded_suffix.map(|_| {
                    let shape = keyguard_credentials::Shape::of(
                        r.spec.credential.expect("checked at load"),
                    );
                    crate::ascii_regex::new(&format!("^(?:{})=*$", shape.pattern))
                        .expect("shapes are valid")
                })
            })
            .collect();
        let decoders = crate::decode::Decoders::new(&rules.base64_words, &rules.calls);
        let pattern_rules = pattern_rule_set(&rules);
        Detector {
            rules,
            prefilter,
            pattern_rules,
            x_context: crate::ascii_regex::new(
                r"(?i)twitter|twtr|tweepy|tweet|twit\b|\bx\.com\b|api\.x\.com|\bX_[A-Z]|\bx[_-]api",
            )
            .unwrap(),
            secret_manifest: crate::ascii_regex::new(r#"(?m)^[ \t]*"?kind"?[ \t]*:[ \t]*"?Secret"?"#).unwrap(),
            secret_data: crate::ascii_regex::new(
                r#"(?P<key>[A-Za-z0-9_.\-]+)"?[ \t]*:[ \t]*"?(?P<b64>[A-Za-z0-9+/]{16,}={0,2})(?:["\s,}\x80-\xFF]|$)"#,
            )
            .unwrap(),
            base64_markers,
            base64_shapes,
            decoders,
            known: None,
        }
    }

    pub fn builtin() -> Self {
        Self::new(RuleSet::builtin())
    }

    /// Also reports every occurrence of these known values.
    pub fn with_known(mut self, known: crate::known::Known) -> Self {
        let rule = self.rules.push_known_rule();
        self.known = Some((known, rule));
        self
    }

    /// Finds credentials in `buf`. `path` gives context (a path that names
    /// Twitter counts as context for generic identifiers).
    pub fn detect(&self, buf: &[u8], path: &str, out: &mut Vec<Detection>) {
        let first = out.len();
        let path_context = self.x_context.is_match(path.as_bytes());
        self.detect_at(buf, path_context, false, 0, out);
        for d in &mut out[first..] {
            let (line, column, allowed) = line_info(buf, d.start);
            d.line = line;
            d.column = column;
            d.allowed_inline = allowed;
        }
    }

    /// The rules on `buf`, then on the decoders' views of it; `depth`
    /// counts the views this buffer is inside.
    fn detect_at(
        &self,
        buf: &[u8],
        path_context: bool,
        forced_context: bool,
        depth: u8,
        out: &mut Vec<Detection>,
    ) {
        let first = out.len();
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for (start, end) in self.prefilter.hits(buf) {
            let (s, e) = window_around(buf, start, end);
            match windows.last_mut() {
                Some((_, we)) if s <= *we => *we = (*we).max(e),
                _ => windows.push((s, e)),
            }
        }
        for &w in &windows {
            self.detect_window(buf, w, path_context, forced_context, out);
        }
        if !windows.is_empty() && self.secret_manifest.is_match(buf) {
            self.detect_secret_manifest(buf, path_context, out);
        }
        if let Some((known, rule)) = &self.known {
            let mut hits = Vec::new();
            known.find(buf, &mut hits);
            out.extend(hits.into_iter().map(|h| Detection {
                rule: *rule,
                credential: h.label.key.unwrap_or(CredentialKey::ApiKey),
                start: h.start,
                end: h.end,
                line: 0,
                column: 0,
                value: SecretValue::new(h.value),
                allowed_inline: false,
                decoded: false,
                label: Some(h.label.clone()),
            }));
        }
        if depth < crate::decode::MAX_DEPTH {
            self.detect_views(buf, &windows, path_context, forced_context, depth, out);
        }
        dedupe_from(out, first, self.known.as_ref().map(|(_, r)| *r));
    }

    /// Every decoder's views of `buf`, scanned as text; X mentioned near
    /// the encoded text counts as context inside the view.
    fn detect_views(
        &self,
        buf: &[u8],
        windows: &[(usize, usize)],
        path_context: bool,
        forced_context: bool,
        depth: u8,
        out: &mut Vec<Detection>,
    ) {
        let mut views = Vec::new();
        let mentions_x = |w: &[u8]| path_context || self.x_context.is_match(w);
        self.decoders.views(buf, windows, &mentions_x, &mut views);
        let mut found = Vec::new();
        for view in views {
            if view.text.len() > crate::decode::MAX_VIEW_BYTES {
                continue;
            }
            let (s, e) = view.origin;
            let context = forced_context || self.near_context(buf, s, e);
            found.clear();
            self.detect_at(&view.text, path_context, context, depth + 1, &mut found);
            for mut d in found.drain(..) {
                d.start = s;
                d.end = e;
                d.decoded = true;
                out.push(d);
            }
        }
    }

    fn detect_window(
        &self,
        buf: &[u8],
        (ws, we): (usize, usize),
        path_context: bool,
        forced_context: bool,
        out: &mut Vec<Detection>,
    ) {
        let text = &buf[ws..we];
        for (index, rule) in self.rules.rules.iter().enumerate() {
            if rule.spec.kind == RuleKind::Base64Token {
                self.find_base64_tokens(buf, (ws, we), index, rule, out);
            }
        }
        let (set, indices) = &self.pattern_rules;
        for slot in set.matches(text).iter() {
            let index = indices[slot];
            let rule = &self.rules.rules[index];
            let regex = rule.regex.as_ref().expect("compiled");
            for caps in regex.captures_iter(text) {
                let value = caps.name("value").expect("rules capture a value");
                let name = caps
                    .name("name")
                    .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned());
                let span = (ws + value.start(), ws + value.end());
                let context = forced_context || path_context;
                if let Some(credential) = self.accepts(buf, rule, name.as_deref(), span, context) {
                    out.push(Detection {
                        rule: index,
                        credential,
                        start: span.0,
                        end: span.1,
                        line: 0,
                        column: 0,
                        value: SecretValue::new(value.as_bytes()),
                        allowed_inline: false,
                        decoded: false,
                        label: None,
                    });
                }
            }
        }
    }

    /// Whether a rule's match at `start..end` (named `name`) is a
    /// credential, and which: excluded names, implausible values, data URIs
    /// and generic names without X near them are not.
    fn accepts(
        &self,
        buf: &[u8],
        rule: &Rule,
        name: Option<&str>,
        (start, end): (usize, usize),
        context: bool,
    ) -> Option<CredentialKey> {
        if name.is_some_and(|n| rule.name_excluded(n) || self.rules.names_other_vendor(n)) {
            return None;
        }
        let credential = rule.credential_for(name);
        if !is_plausible(credential, &buf[start..end]) {
            return None;
        }
        if credential == CredentialKey::BearerToken && preceded_by(buf, start, b"base64,") {
            return None;
        }
        let needs_context = rule.spec.context == Some(ContextRequirement::X)
            && !context
            && !name.is_some_and(|n| self.name_has_context(rule, n));
        if needs_context && !self.near_context(buf, start, end) {
            return None;
        }
        Some(credential)
    }

    fn name_has_context(&self, rule: &Rule, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        rule.name_is_context_free(name)
            || ["twitter", "twtr", "tweet", "twit"]
                .iter()
                .any(|w| lower.contains(w))
            || lower.starts_with("x_")
            || lower.starts_with("x-")
            || lower.starts_with("x.")
            || lower.contains("_x_")
    }

    fn near_context(&self, buf: &[u8], start: usize, end: usize) -> bool {
        let s = start.saturating_sub(CONTEXT_RADIUS);
        let e = (end + CONTEXT_RADIUS).min(buf.len());
        self.x_context.is_match(&buf[s..e])
    }

    /// Base64 tokens are found by their suffix's base64 forms, widened to
    /// the whole run of base64 characters, then decoded and checked.
    fn find_base64_tokens(
        &self,
        buf: &[u8],
        (ws, we): (usize, usize),
        index: usize,
        rule: &Rule,
        out: &mut Vec<Detection>,
    ) {
        let suffix = rule.decoded_suffix.expect("base64 rules have a suffix");
        let shape = keyguard_credentials::Shape::of(
            rule.spec
                .credential
                .expect("base64 rules name a credential"),
        );
        for (_, marker) in self.base64_markers.iter().filter(|(i, _)| *i == index) {
            for pos in memchr::memmem::find_iter(&buf[ws..we], marker) {
                let (start, end) = widen_base64(buf, ws + pos, marker.len());
                if out.iter().any(|d| d.start == start && d.rule == index) {
                    continue;
                }
                let token = &buf[start..end];
                if !self.is_base64_token(token, index, suffix) {
                    continue;
                }
                out.push(Detection {
                    rule: index,
                    credential: shape.key,
                    start,
                    end,
                    line: 0,
                    column: 0,
                    value: SecretValue::new(token),
                    allowed_inline: false,
                    decoded: false,
                    label: None,
                });
            }
        }
    }

    /// Whether `token` decodes to printable text with the rule's suffix,
    /// has the rule's length, and is no placeholder.
    fn is_base64_token(&self, token: &[u8], index: usize, suffix: &str) -> bool {
        let Some(decoded) = decode_base64(token) else {
            return false;
        };
        let trimmed = decoded.strip_suffix(b"\n").unwrap_or(&decoded);
        let printable = trimmed.iter().all(|b| b.is_ascii_graphic());
        let len_ok = self.base64_shapes[index]
            .as_ref()
            .is_some_and(|r| r.is_match(token));
        if !printable || !trimmed.ends_with(suffix.as_bytes()) || !len_ok {
            return false;
        }
        let body = &trimmed[..trimmed.len() - suffix.len()];
        body.len() >= 8 && !looks_like_placeholder(body)
    }

    /// `data:` values of a Kubernetes Secret are base64: decode each and
    /// scan `key: decoded` as if it had been written in clear.
    fn detect_secret_manifest(&self, buf: &[u8], path_context: bool, out: &mut Vec<Detection>) {
        let manifest_context = path_context || self.x_context.is_match(buf);
        let mut synthetic = Vec::new();
        let mut found = Vec::new();
        for caps in self.secret_data.captures_iter(buf) {
            let b64 = caps.name("b64").unwrap();
            let Some(decoded) = decode_base64(b64.as_bytes()) else {
                continue;
            };
            if decoded
                .iter()
                .any(|b| !(b.is_ascii_graphic() || b.is_ascii_whitespace()))
            {
                continue;
            }
            synthetic.clear();
            synthetic.extend_from_slice(caps.name("key").unwrap().as_bytes());
            synthetic.extend_from_slice(b": ");
            synthetic.extend_from_slice(&decoded);
            synthetic.push(b'\n');
            found.clear();
            self.detect_window(
                &synthetic,
                (0, synthetic.len()),
                path_context,
                manifest_context,
                &mut found,
            );
            for mut d in found.drain(..) {
                // Point at the encoded value in the manifest.
                d.start = b64.start();
                d.end = b64.end();
                out.push(d);
            }
        }
    }
}

/// The run of base64 characters (at most 200 on each side) around a
/// marker at `at`, with its padding.
fn widen_base64(buf: &[u8], at: usize, len: usize) -> (usize, usize) {
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/');
    let mut start = at;
    while start > 0 && is_b64(buf[start - 1]) && at - start < 200 {
        start -= 1;
    }
    let mut end = at + len;
    while end < buf.len() && is_b64(buf[end]) && end - at < 200 {
        end += 1;
    }
    while end < buf.len() && buf[end] == b'=' {
        end += 1;
    }
    (start, end)
}

/// A window of whole lines around a hit, at most WINDOW_RADIUS (plus the
/// rest of a line, up to another WINDOW_RADIUS) on each side.
fn window_around(buf: &[u8], start: usize, end: usize) -> (usize, usize) {
    let mut s = start.saturating_sub(WINDOW_RADIUS);
    let floor = s.saturating_sub(WINDOW_RADIUS);
    s = memchr::memrchr(b'\n', &buf[floor..s]).map_or(floor, |p| floor + p + 1);
    let mut e = (end + WINDOW_RADIUS).min(buf.len());
    let ceil = (e + WINDOW_RADIUS).min(buf.len());
    e = memchr::memchr(b'\n', &buf[e..ceil]).map_or(ceil, |p| e + p);
    (s, e)
}

fn preceded_by(buf: &[u8], at: usize, text: &[u8]) -> bool {
    at >= text.len() && buf[at - text.len()..at].eq_ignore_ascii_case(text)
}

/// Keeps one detection per credential occurrence: per overlapping span
/// and value, the earliest rule wins, so a specific rule beats the
/// generic TWITTER_*/X_* one. A decoded view's findings share its span,
/// so there only the same value merges, or a value with a part of it (a
/// token split over two literals is found whole in the joined view and
/// cut short in the first literal): the longest value wins. A `--known`
/// finding beats any rule's: it names whose the value is.
fn dedupe_from(out: &mut Vec<Detection>, first: usize, known: Option<usize>) {
    let is_known = |d: &Detection| Some(d.rule) == known;
    let mut new: Vec<Detection> = out.drain(first..).collect();
    new.sort_by_key(|d| (d.start, d.rule));
    let mut kept: Vec<Detection> = Vec::with_capacity(new.len());
    for d in new {
        let overlaps = |k: &Detection| d.start < k.end && k.start < d.end;
        let Some(k) = kept
            .iter_mut()
            .find(|k| overlaps(k) && same_occurrence(&d, k))
        else {
            kept.push(d);
            continue;
        };
        let better = if d.decoded || k.decoded {
            let (dl, kl) = (d.value.expose().len(), k.value.expose().len());
            dl > kl || (dl == kl && d.rule < k.rule)
        } else {
            d.rule < k.rule
        };
        if is_known(&d) || (!is_known(k) && better) {
            *k = d;
        }
    }
    out.extend(kept);
}

/// Whether two overlapping detections are one credential occurrence.
fn same_occurrence(a: &Detection, b: &Detection) -> bool {
    if !(a.decoded || b.decoded) {
        return true;
    }
    let (a, b) = (a.value.expose(), b.value.expose());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    !short.is_empty() && memchr::memmem::find(long, short).is_some()
}

/// 1-based line and column of `offset`, and whether the line is waived.
fn line_info(buf: &[u8], offset: usize) -> (usize, usize, bool) {
    let line = memchr::memchr_iter(b'\n', &buf[..offset]).count() + 1;
    let line_start = memchr::memrchr(b'\n', &buf[..offset]).map_or(0, |p| p + 1);
    let line_end = memchr::memchr(b'\n', &buf[offset..]).map_or(buf.len(), |p| offset + p);
    let allowed = memchr::memmem::find(&buf[line_start..line_end], ALLOW_MARKER).is_some();
    (line, offset - line_start + 1, allowed)
}

/// The rules matched by a pattern (structural and assignment rules), as
/// one set, with each member's rule index.
fn pattern_rule_set(rules: &RuleSet) -> (regex::bytes::RegexSet, Vec<usize>) {
    let (patterns, indices): (Vec<&str>, Vec<usize>) = rules
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.spec.kind, RuleKind::Structural | RuleKind::Assignment))
        .map(|(i, r)| (r.regex.as_ref().expect("compiled").as_str(), i))
        .unzip();
    let set = crate::ascii_regex::set(patterns).expect("each pattern compiled alone");
    (set, indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Vec<Detection> {
        let mut out = Vec::new();
        Detector::builtin().detect(text.as_bytes(), "bot.py", &mut out);
        out
    }

    const BEARER: &str = "AAAAAAAAAAAAAAAAAAAAAGzvAmwufUxAAAAAAAbvJDCTbyvHNsG9eh6Yo4%2Bgfqrc5Xl%3DrWi0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3hDavJA7"; // keyguard:allow

    #[test]
    fn a_token_split_over_two_literals_is_one_finding_with_the_whole_value() {
        for cut in [70, 90] {
            let text = format!("BEARER = \"{}\" + \"{}\"\n", &BEARER[..cut], &BEARER[cut..]);
            let found = detect(&text);
            assert_eq!(found.len(), 1, "cut at {cut}: {found:?}");
            assert_eq!(found[0].value.expose(), BEARER.as_bytes());
        }
    }

    #[test]
    fn unicode_whitespace_ends_a_value_as_ascii_whitespace_does() {
        let secret = "q7Zx2Lm9Rt4Vb8Nc1Kd6Hf3Gj5Sw0Ey7Pu2Ia9Oz4Xc8Vn1Bm6"; // keyguard:allow
        for end in ["", " ", "\u{a0}", "\u{3000}", "\u{2028}"] {
            let text = format!("twitter:\n  consumer_secret: {secret}{end}\n");
            let found = detect(&text);
            assert_eq!(found.len(), 1, "ended by {end:?}: {found:?}");
            assert_eq!(found[0].value.expose(), secret.as_bytes());
        }
    }

    #[test]
    fn line_column_and_the_inline_waiver() {
        let text = format!("# bot\nx = 1\n  BEARER = \"{BEARER}\" # keyguard:allow\n");
        let found = detect(&text);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (3, 13));
        assert!(found[0].allowed_inline);
        let found = detect(&format!("BEARER = \"{BEARER}\"\n# keyguard:allow\n"));
        assert!(
            !found[0].allowed_inline,
            "the waiver is for its own line only"
        );
    }

    #[test]
    fn windows_are_whole_lines_around_a_hit() {
        type Span = (usize, usize);
        let cases: [(&[u8], Span, Span); 3] = [
            (b"one\ntwo token three\nfour", (8, 13), (0, 24)),
            (b"token", (0, 5), (0, 5)),
            (b"a\nb", (2, 3), (0, 3)),
        ];
        for (buf, (s, e), want) in cases {
            assert_eq!(
                window_around(buf, s, e),
                want,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
        let long = vec![b'x'; 8 * WINDOW_RADIUS];
        let (start, end) = (4 * WINDOW_RADIUS, 4 * WINDOW_RADIUS + 5);
        assert_eq!(
            window_around(&long, start, end),
            (start - 2 * WINDOW_RADIUS, end + 2 * WINDOW_RADIUS),
            "a line longer than the window is cut at twice the radius"
        );
    }

    #[test]
    fn another_vendors_name_is_no_x_credential_even_in_an_x_file() {
        let secret = "jIhKtJ0RlgLKOmxgJTeKdNnFRIBXuDL7DxtpYlSXp"; // keyguard:allow
        let cases = [
            ("TUMBLR_CONSUMER_SECRET", false),
            ("tumblrConsumerSecret", false),
            ("TWITTER_CONSUMER_SECRET", true),
            ("consumer_secret", true),
        ];
        for (name, reported) in cases {
            let found = detect(&format!("# tweets and posts\n{name} = \"{secret}\"\n"));
            assert_eq!(!found.is_empty(), reported, "{name}");
        }
    }
}
