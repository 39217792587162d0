//! A finding: which rule, which credential, where, and a fingerprint. The
//! value itself stays in memory (for `--verify`) and is never printed.

use keyguard_credentials::{redact, CredentialKey, Fingerprint, SecretValue};
use serde::Serialize;

/// Whether the X API accepted the credential (`--verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// Not asked (no `--verify`).
    #[default]
    Unverified,
    /// The X API accepted it: it is live.
    Verified,
    /// The X API refused it.
    Invalid,
    /// Could not tell (not checkable alone, network error, rate limited).
    Unknown,
}

/// Where a finding is in git history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub commit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub rule_id: String,
    pub rule_name: String,
    pub credential: CredentialKey,
    /// Path relative to the scanned root, with `/` separators.
    pub path: String,
    pub line: usize,
    pub column: usize,
    /// Git blob the finding is in (history and range modes).
    pub blob: Option<String>,
    pub commit: Option<CommitInfo>,
    pub value: SecretValue,
    pub verification: Verification,
    /// Why a verification came out as it did, where it needs saying.
    pub verification_reason: Option<&'static str>,
    /// For a known live credential: what to do now, for its kind.
    pub next_step: Option<std::sync::Arc<str>>,
}

impl Finding {
    pub fn fingerprint(&self) -> Fingerprint {
        self.value.fingerprint()
    }

    /// A few leading characters, the length and the fingerprint.
    pub fn redacted(&self) -> String {
        redact(self.value.expose())
    }

    /// A one-line description for people; holds no value.
    pub fn message(&self) -> String {
        let found = format!(
            "{} found ({}): {}",
            self.rule_name,
            self.rule_id,
            self.redacted()
        );
        match &self.next_step {
            Some(step) => format!("{found}; next: {step}"),
            None => found,
        }
    }

    /// The serializable view, without the value.
    pub fn record(&self) -> FindingRecord<'_> {
        FindingRecord {
            rule_id: &self.rule_id,
            rule_name: &self.rule_name,
            credential: self.credential,
            path: &self.path,
            line: self.line,
            column: self.column,
            commit: self.commit.as_ref(),
            blob: self.blob.as_deref(),
            fingerprint: self.fingerprint().to_string(),
            redacted: self.redacted(),
            length: self.value.expose().len(),
            verification: self.verification,
            verification_reason: self.verification_reason,
            next_step: self.next_step.as_deref(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingRecord<'a> {
    pub rule_id: &'a str,
    pub rule_name: &'a str,
    pub credential: CredentialKey,
    pub path: &'a str,
    pub line: usize,
    pub column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<&'a CommitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<&'a str>,
    pub fingerprint: String,
    pub redacted: String,
    pub length: usize,
    pub verification: Verification,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<&'a str>,
}
