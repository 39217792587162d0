//! Which shard of a sweep a repository belongs to. Each matrix job lists the
//! organisation itself and keeps its shard, so the split must not depend on
//! the listing's order or size: a repository created between two jobs'
//! listings lands in exactly one shard or in none, never in two.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (1-based, as a matrix numbers its jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole organisation: one shard.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Pure: whether `full_name` (`owner/name`) is this shard's. GitHub
    /// names are case-insensitive, so the hash is of the lower-case name.
    pub fn contains(&self, full_name: &str) -> bool {
        fnv1a(&full_name.to_ascii_lowercase()) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's
/// hasher, whose algorithm may change between Rust releases.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("--shard {text:?}: expected INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 3/8");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_index_over_count() {
        let cases: [(&str, Option<(u32, u32)>); 8] = [
            ("1/1", Some((1, 1))),
            ("3/8", Some((3, 8))),
            ("8/8", Some((8, 8))),
            ("0/8", None),
            ("9/8", None),
            ("1/0", None),
            ("3", None),
            ("a/b", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<Shard>().ok().map(|s| (s.index, s.count));
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn every_repository_is_in_exactly_one_shard_and_the_split_is_even() {
        let count = 8;
        let mut sizes = vec![0; count as usize];
        for i in 0..1000 {
            let name = format!("acme/service-{i}");
            let owners: Vec<u32> = (1..=count)
                .filter(|&index| Shard { index, count }.contains(&name))
                .collect();
            assert_eq!(owners.len(), 1, "{name} is in shards {owners:?}");
            sizes[owners[0] as usize - 1] += 1;
        }
        for size in sizes {
            assert!((90..=160).contains(&size), "uneven shard of {size} of 1000");
        }
    }

    #[test]
    fn a_name_is_in_the_same_shard_whatever_its_case() {
        let shard = |name: &str| (1..=5).find(|&index| Shard { index, count: 5 }.contains(name));
        assert_eq!(shard("Acme/Bot"), shard("acme/bot"));
        assert!(Shard::ALL.contains("acme/anything"));
    }
}
