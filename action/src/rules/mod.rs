//! Detection rules: loaded from `x-credentials.yaml` (data, with examples
//! that a test checks) and compiled into regular expressions once.

mod plausible;

use keyguard_credentials::{base64_marker_variants, CredentialKey, Shape, BEARER_TOKEN_PREFIX};
use regex::bytes::Regex;
use serde::Deserialize;

use crate::decode::{Base64Words, CallSpec};

pub use plausible::{is_plausible, looks_like_placeholder};

/// The rules file, compiled into the binary.
pub const BUILTIN_RULES: &str = include_str!("x-credentials.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    keywords: Vec<String>,
    base64_words: Base64Words,
    #[serde(default)]
    other_vendors: Vec<String>,
    rules: Vec<RuleSpec>,
    #[serde(default)]
    decoders: Vec<DecoderSpec>,
    #[serde(default)]
    calls: Vec<CallSpec>,
    #[serde(default)]
    published_examples: Vec<PublishedExample>,
}

/// A value X itself publishes as an example in its documentation, by
/// fingerprint: found like any credential, reported as an example.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublishedExample {
    pub fingerprint: String,
    pub credential: CredentialKey,
    /// The page of X's documentation that prints it.
    pub published_at: String,
}

/// A decoder as the rules file describes it (the decoding is code, in
/// `decode/`); its examples are checked like a rule's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSpec {
    pub id: String,
    pub description: String,
    #[serde(default)]
    pub examples: Examples,
}

/// A rule as written in the rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub credential: Option<CredentialKey>,
    pub kind: RuleKind,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub exclude_names: Vec<String>,
    #[serde(default)]
    pub context: Option<ContextRequirement>,
    #[serde(default)]
    pub context_free_names: Vec<String>,
    #[serde(default)]
    pub examples: Examples,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    Structural,
    Base64Token,
    Assignment,
    /// Exact values with known fingerprints (`--known`); not in the file.
    Known,
}

/// What must be near a finding for a generic identifier to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContextRequirement {
    /// Twitter/X is mentioned by the identifier, the path or nearby text.
    X,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Examples {
    #[serde(default)]
    pub positive: Vec<String>,
    #[serde(default)]
    pub negative: Vec<String>,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub spec: RuleSpec,
    /// For structural and assignment rules: the expression with a `value`
    /// group (and for assignments a `name` group).
    pub regex: Option<Regex>,
    /// For base64 tokens: the text the decoded token ends with.
    pub decoded_suffix: Option<&'static str>,
    exclude_names: Vec<Regex>,
}

impl Rule {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The credential this rule finds; for rules that infer it, from the
    /// identifier the value was assigned to.
    pub fn credential_for(&self, name: Option<&str>) -> CredentialKey {
        if let Some(c) = self.spec.credential {
            return c;
        }
        let name = name.unwrap_or_default().to_ascii_lowercase();
        if name.contains("bearer") {
            CredentialKey::BearerToken
        } else if name.contains("token") && name.contains("secret") {
            CredentialKey::AccessTokenSecret
        } else if name.contains("client") && name.contains("secret") {
            CredentialKey::ClientSecret
        } else if name.contains("secret") {
            CredentialKey::ApiKeySecret
        } else if name.contains("refresh") {
            CredentialKey::RefreshToken
        } else if name.contains("token") {
            CredentialKey::AccessToken
        } else {
            CredentialKey::ApiKey
        }
    }

    /// Whether an identifier is excluded (e.g. `api_key_secret` for API keys).
    pub fn name_excluded(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.exclude_names
            .iter()
            .any(|r| r.is_match(lower.as_bytes()))
    }

    /// Whether an identifier is specific enough to need no Twitter context.
    pub fn name_is_context_free(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.spec
            .context_free_names
            .iter()
            .any(|n| lower.contains(n.as_str()))
    }
}

/// Errors in a rules file.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rules file: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("rule {id}: {message}")]
    Invalid { id: String, message: String },
}

/// All rules, plus the keywords that must occur near any finding.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub decoders: Vec<DecoderSpec>,
    pub calls: Vec<CallSpec>,
    /// Literal keywords (ASCII case-insensitive) for the prefilter.
    pub keywords: Vec<String>,
    /// Base64 forms of keywords: case-sensitive in the prefilter (folding
    /// their case would blow up the literal search for every file).
    pub markers: Vec<String>,
    /// What the base64 decoder looks for.
    pub base64_words: Base64Words,
    /// Lowercase words that name another vendor's credential.
    pub other_vendors: Vec<String>,
    /// X's own documentation examples, by fingerprint.
    pub published_examples: Vec<PublishedExample>,
}

/// Identifiers' characters, on either side of a rule's name.
const IDENT: &str = r"[a-z0-9_.\-]*";

fn assignment_pattern(names: &[String], value: &str) -> String {
    let names = names.join("|");
    // name, closing quote/bracket of the key, an operator (=, :, =>, :=, a
    // call's parenthesis, an XML tag's '>', an attribute's value=, or
    // whitespace as in Dockerfile ENV), an opening quote (JSON-escaped
    // quotes too), then the value and something that ends it.
    format!(
        r#"(?P<name>(?i:{IDENT}(?:{names}){IDENT}))\\?["'`]?\]?(?:[ \t]+value)?[ \t]*(?:=>|:=|==|=|:|,|\(|>|[ \t])[ \t]*(?:\\?["'`])?(?P<value>{value})(?:\\?["'`]|[\s,;)}}\]<&\x80-\xFF]|$)"#
    )
}

impl RuleSet {
    /// The rules shipped with keyguard.
    pub fn builtin() -> Self {
        Self::from_yaml(BUILTIN_RULES).expect("built-in rules are valid (tested)")
    }

    pub fn from_yaml(text: &str) -> Result<Self, RuleError> {
        let file: RulesFile = serde_yaml::from_str(text)?;
        let mut keywords = file.keywords;
        keywords.push(BEARER_TOKEN_PREFIX.to_string());
        // A bearer token inside a base64-encoded Secret value, and what the
        // base64 decoder looks for.
        let mut markers = base64_marker_variants(BEARER_TOKEN_PREFIX);
        markers.extend(crate::decode::base64_markers(&file.base64_words));
        let rules = file
            .rules
            .into_iter()
            .map(compile_rule)
            .collect::<Result<Vec<_>, _>>()?;
        markers.extend(
            rules
                .iter()
                .filter_map(|r| r.decoded_suffix)
                .flat_map(base64_marker_variants),
        );
        keywords.sort();
        keywords.dedup();
        markers.sort();
        markers.dedup();
        for c in &file.calls {
            crate::ascii_regex::new(&c.call).map_err(|e| RuleError::Invalid {
                id: format!("call {}", c.call),
                message: e.to_string(),
            })?;
        }
        Ok(RuleSet {
            rules,
            decoders: file.decoders,
            calls: file.calls,
            keywords,
            markers,
            base64_words: file.base64_words,
            published_examples: file.published_examples,
            other_vendors: file
                .other_vendors
                .iter()
                .map(|v| v.to_ascii_lowercase())
                .collect(),
        })
    }

    /// The published example a value with this fingerprint is, if any.
    pub fn published_example(&self, fingerprint: &str) -> Option<&PublishedExample> {
        self.published_examples
            .iter()
            .find(|e| e.fingerprint == fingerprint)
    }

    /// Whether an identifier names another vendor's credential
    /// (`TUMBLR_CONSUMER_SECRET`): one of its words is another vendor's
    /// and none is X's.
    pub fn names_other_vendor(&self, name: &str) -> bool {
        let words = identifier_words(name);
        let is_x = |w: &String| matches!(w.as_str(), "twitter" | "twtr" | "tweet" | "x" | "tweepy");
        !words.iter().any(is_x) && words.iter().any(|w| self.other_vendors.contains(w))
    }

    /// The rule `--known` findings are reported under.
    pub fn push_known_rule(&mut self) -> usize {
        self.rules.push(Rule {
            spec: RuleSpec {
                id: "x-known-credential".into(),
                name: "Known live X credential".into(),
                credential: None,
                kind: RuleKind::Known,
                pattern: None,
                names: Vec::new(),
                exclude_names: Vec::new(),
                context: None,
                context_free_names: Vec::new(),
                examples: Examples::default(),
            },
            regex: None,
            decoded_suffix: None,
            exclude_names: Vec::new(),
        });
        self.rules.len() - 1
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id() == id)
    }
}

/// One rule of the file, compiled.
fn compile_rule(spec: RuleSpec) -> Result<Rule, RuleError> {
    let invalid = |message: String| RuleError::Invalid {
        id: spec.id.clone(),
        message,
    };
    let shape = spec.credential.map(Shape::of);
    let mut decoded_suffix = None;
    let regex = match spec.kind {
        RuleKind::Structural => {
            let pattern = spec
                .pattern
                .as_deref()
                .ok_or_else(|| invalid("structural rules need a pattern".into()))?;
            Some(
                crate::ascii_regex::new(&structural_pattern(pattern, shape))
                    .map_err(|e| invalid(e.to_string()))?,
            )
        }
        RuleKind::Assignment => {
            let s = shape.ok_or_else(|| invalid("assignment rules need a credential".into()))?;
            if spec.names.is_empty() {
                return Err(invalid("assignment rules need names".into()));
            }
            Some(
                crate::ascii_regex::new(&assignment_pattern(&spec.names, s.pattern))
                    .map_err(|e| invalid(e.to_string()))?,
            )
        }
        RuleKind::Known => {
            return Err(invalid(
                "`known` rules come from --known, not the rules file".into(),
            ))
        }
        RuleKind::Base64Token => {
            decoded_suffix = Some(shape.and_then(|s| s.decoded_suffix).ok_or_else(|| {
                invalid("base64-token rules need a credential with a decoded suffix".into())
            })?);
            None
        }
    };
    let exclude_names = spec
        .exclude_names
        .iter()
        .map(|p| crate::ascii_regex::new(p).map_err(|e| invalid(e.to_string())))
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        spec,
        regex,
        decoded_suffix,
        exclude_names,
    })
}

/// A structural rule's pattern with `{shape}` filled in and a `value`
/// group around the whole match if it names none.
fn structural_pattern(pattern: &str, shape: Option<&Shape>) -> String {
    let pattern = match shape {
        Some(s) => pattern.replace("{shape}", s.pattern),
        None => pattern.to_string(),
    };
    if pattern.contains("(?P<value>") {
        pattern
    } else {
        format!("(?P<value>{pattern})")
    }
}

/// An identifier's words, lowercase: split at `_`, `.`, `-` and where
/// camelCase turns to a capital (`tumblrConsumerKey`, `TUMBLR_KEY`).
fn identifier_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            previous_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_into_lowercase_words() {
        let cases: [(&str, &[&str]); 5] = [
            ("TUMBLR_CONSUMER_SECRET", &["tumblr", "consumer", "secret"]),
            ("tumblrConsumerSecret", &["tumblr", "consumer", "secret"]),
            (
                "spring.social.twitter.app-id",
                &["spring", "social", "twitter", "app", "id"],
            ),
            ("OAuth2Token", &["oauth2", "token"]),
            ("", &[]),
        ];
        for (name, words) in cases {
            assert_eq!(identifier_words(name), words, "{name}");
        }
    }

    #[test]
    fn another_vendors_word_without_an_x_word_names_another_vendor() {
        let rules = RuleSet::builtin();
        let cases = [
            ("TUMBLR_OAUTH_TOKEN_SECRET", true),
            ("githubAppSecret", true),
            ("TWITTER_TUMBLR_BRIDGE_SECRET", false),
            ("X_API_KEY", false),
            ("pipeline_token", false),
        ];
        for (name, other) in cases {
            assert_eq!(rules.names_other_vendor(name), other, "{name}");
        }
    }
}
