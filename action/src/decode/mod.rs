//! Decoders: the other ways a credential is written in real leaks. Each one
//! finds text written some other way (a `Basic` header, a base64 blob, a
//! twice percent-encoded URL, JSON `\uXXXX` escapes, a value split over
//! concatenated literals, a name and value in sibling JSON fields) and gives a decoded view of it; the detector
//! runs every rule on the view (decoding again, to a bounded depth) and
//! reports what it finds at the encoded text's place.
//!
//! Which decoders exist, with examples a test checks, is data too: the
//! `decoders:` section of `rules/x-credentials.yaml`.

mod base64_blobs;
mod basic_auth;
mod calls;
pub(crate) mod concat;
mod escapes;
mod pairs;
mod structure;
mod tables;
mod tuples;
pub use base64_blobs::Base64Words;
pub use calls::CallSpec;
pub mod utf16;
mod view;

pub use view::{decode_base64, View, MAX_DEPTH, MAX_VIEW_BYTES};

/// Every decoder, compiled once.
#[derive(Debug)]
pub struct Decoders {
    basic_auth: basic_auth::BasicAuth,
    base64: base64_blobs::Base64Blobs,
    escapes: escapes::Escapes,
    concat: concat::Concatenation,
    pairs: pairs::NameValueFields,
    nested: structure::NestedKeys,
    tables: tables::Tables,
    calls: calls::Calls,
    tuples: tuples::Tuples,
}

impl Decoders {
    /// Every decoder, with what the rules file gives them: the base64
    /// words and the known X client calls.
    pub fn new(base64_words: &Base64Words, calls: &[CallSpec]) -> Self {
        Decoders {
            basic_auth: basic_auth::BasicAuth::new(),
            base64: base64_blobs::Base64Blobs::new(base64_words),
            escapes: escapes::Escapes::new(),
            concat: concat::Concatenation::new(),
            pairs: pairs::NameValueFields::new(),
            nested: structure::NestedKeys,
            tables: tables::Tables::new(),
            calls: calls::Calls::new(calls),
            tuples: tuples::Tuples::new(),
        }
    }

    /// The decoders' ids, as the rules file names them.
    pub const IDS: [&'static str; 10] = [
        basic_auth::ID,
        base64_blobs::ID,
        escapes::JSON_ID,
        escapes::PERCENT_ID,
        concat::ID,
        pairs::ID,
        structure::ID,
        tables::ID,
        calls::ID,
        tuples::ID,
    ];

    /// Appends every view of `buf` that some decoder finds. `windows` are
    /// the spans around keyword hits (the rules file's keywords include each
    /// decoder's trigger): decoders look only there, so a file
    /// without any costs one search.
    /// Names joined from a structure only count near a mention of X
    /// (`mentions_x`), so that decoder looks only there.
    pub fn views(
        &self,
        buf: &[u8],
        windows: &[(usize, usize)],
        mentions_x: &dyn Fn(&[u8]) -> bool,
        out: &mut Vec<View>,
    ) {
        self.base64.views(buf, windows, out);
        self.escapes.views(buf, windows, out);
        self.tables.views(buf, windows, out);
        let mut found = Vec::new();
        for &(s, e) in windows {
            self.basic_auth.views(&buf[s..e], &mut found);
            self.concat.views(&buf[s..e], &mut found);
            self.pairs.views(&buf[s..e], &mut found);
            if mentions_x(&buf[s..e]) {
                self.nested.views(&buf[s..e], &mut found);
                self.tuples.views(&buf[s..e], &mut found);
            }
            self.calls.views(&buf[s..e], &mut found);
            out.extend(found.drain(..).map(|mut v| {
                v.origin = (v.origin.0 + s, v.origin.1 + s);
                v
            }));
        }
    }
}

pub use base64_blobs::markers as base64_markers;
