//! `--verify`: ask the X API whether a found credential is live, with the
//! project's one X API client (crate `keyguard-xapi`, the operator's too).
//! Only read-only calls that change nothing are made; a refresh token is
//! never used (it is single-use: verifying it would spend it), so it stays
//! `unknown`.

use std::time::Duration;

use keyguard_credentials::{CredentialKey, SecretValue};
use keyguard_xapi::{XApi, XApiClient, XApiError};

use crate::finding::{Finding, Verification};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The X API base URL, e.g. `https://api.x.com`.
    pub base_url: String,
    pub timeout: Duration,
    /// Check API key and secret pairs too (`--verify-consumer-keys`). X can
    /// check them only at its token endpoint, which creates the app's
    /// bearer token when it has none: a write, so it is asked for.
    pub consumer_keys: bool,
}

/// Why an API key pair stays `unknown` without `--verify-consumer-keys`.
pub const CONSUMER_KEYS_NEED_A_WRITE: &str = "not checked: X verifies an API key and secret only at its token endpoint, which creates the app's bearer token if it has none; pass --verify-consumer-keys to allow that";

/// Why a credential refused with a 403 still counts as live.
pub const LIMITED_TIER: &str =
    "live: authenticated, but its access tier does not include the endpoint checked (X error 453)";

/// Pure: what X's answer says about the credential.
fn verdict(answer: Result<(), XApiError>) -> (Verification, Option<&'static str>) {
    match answer {
        Ok(()) => (Verification::Verified, None),
        Err(e) if e.is_tier_limited() => (Verification::Verified, Some(LIMITED_TIER)),
        Err(e) if e.is_rejected_credential() => (Verification::Invalid, None),
        Err(_) => (Verification::Unknown, None),
    }
}

/// The finding's partner of kind `kind`: found in the same file or blob.
fn partner(findings: &[Finding], of: &Finding, kind: CredentialKey) -> Option<SecretValue> {
    findings
        .iter()
        .find(|s| s.credential == kind && s.path == of.path && s.blob == of.blob)
        .map(|s| SecretValue::new(s.value.expose().to_vec()))
}

/// One finding's check; `None` when it cannot be checked without spending
/// or changing something.
async fn check(
    x: &XApiClient,
    findings: &[Finding],
    f: &Finding,
    opts: &VerifyOptions,
) -> Option<Result<(), XApiError>> {
    let value = SecretValue::new(f.value.expose().to_vec());
    Some(match f.credential {
        CredentialKey::BearerToken => x.verify_bearer(&value).await.map(drop),
        CredentialKey::UserAccessToken => x.verify_user_token(&value).await.map(drop),
        // Checkable only as a pair with a secret found beside it, and only
        // when asked: the token endpoint creates a bearer token for an app
        // that has none.
        CredentialKey::ApiKey if opts.consumer_keys => {
            let secret = partner(findings, f, CredentialKey::ApiKeySecret)?;
            x.mint_bearer(&value, &secret).await.map(drop)
        }
        _ => return None,
    })
}

pub fn verify_findings(findings: &mut [Finding], opts: &VerifyOptions) {
    let verdicts = match verdicts(findings, opts) {
        Ok(v) => v,
        Err(_) => vec![(Verification::Unknown, None); findings.len()],
    };
    for (f, v) in findings.iter_mut().zip(verdicts) {
        (f.verification, f.verification_reason) = v;
    }
    // A secret shares the result of the key it was checked with.
    for i in 0..findings.len() {
        if findings[i].credential == CredentialKey::ApiKeySecret {
            let key = findings.iter().find(|k| {
                k.credential == CredentialKey::ApiKey
                    && k.path == findings[i].path
                    && k.blob == findings[i].blob
            });
            (findings[i].verification, findings[i].verification_reason) = key
                .map_or((Verification::Unknown, None), |k| {
                    (k.verification, k.verification_reason)
                });
        }
    }
}

type Verdict = (Verification, Option<&'static str>);

fn verdicts(findings: &[Finding], opts: &VerifyOptions) -> Result<Vec<Verdict>, XApiError> {
    let x = XApiClient::with_roots(
        &opts.base_url,
        opts.timeout,
        concat!("keyguard/", env!("CARGO_PKG_VERSION")),
        &keyguard_xapi::extra_roots_from_env()?,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| XApiError::Transport {
            endpoint: "client",
            message: e.to_string(),
        })?;
    runtime.block_on(async {
        let mut out = Vec::with_capacity(findings.len());
        for f in findings {
            out.push(match check(&x, findings, f, opts).await {
                Some(answer) => verdict(answer),
                None if f.credential == CredentialKey::ApiKey => {
                    (Verification::Unknown, Some(CONSUMER_KEYS_NEED_A_WRITE))
                }
                None => (Verification::Unknown, None),
            });
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_refusal_is_live_and_other_refusals_are_not() {
        let ans = |status: u16, body: &str| -> Result<(), XApiError> {
            if status == 200 {
                return Ok(());
            }
            Err(XApiError::from_answer("GET /x", status, body))
        };
        let cases = [
            ("ok", ans(200, "{}"), Verification::Verified, None),
            (
                "453",
                ans(
                    403,
                    r#"{"errors":[{"code":453,"message":"You currently have access to a subset"}]}"#,
                ),
                Verification::Verified,
                Some(LIMITED_TIER),
            ),
            (
                "v2 not enrolled",
                ans(
                    403,
                    r#"{"title":"Client Forbidden","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}"#,
                ),
                Verification::Verified,
                Some(LIMITED_TIER),
            ),
            (
                "403 unable to verify",
                ans(
                    403,
                    r#"{"errors":[{"code":99,"message":"Unable to verify your credentials"}]}"#,
                ),
                Verification::Invalid,
                None,
            ),
            (
                "401",
                ans(401, r#"{"errors":[{"code":89}]}"#),
                Verification::Invalid,
                None,
            ),
            (
                "429",
                Err(XApiError::RateLimited {
                    endpoint: "GET /x",
                    reset: None,
                }),
                Verification::Unknown,
                None,
            ),
            ("503", ans(503, "<html>"), Verification::Unknown, None),
            (
                "no answer",
                Err(XApiError::Transport {
                    endpoint: "GET /x",
                    message: "timed out".into(),
                }),
                Verification::Unknown,
                None,
            ),
        ];
        for (what, a, v, reason) in cases {
            assert_eq!(verdict(a), (v, reason), "{what}");
        }
    }
}
