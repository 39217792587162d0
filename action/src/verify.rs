//! `--verify`: ask the X API whether a found credential is live. Only
//! read-only calls that change nothing are made; a refresh token is never
//! used (it is single-use: verifying it would spend it), so it stays
//! `unknown`.

use std::time::Duration;

use keyguard_credentials::{basic_authorization, bearer_for_header, CredentialKey};

use crate::finding::{Finding, Verification};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The X API base URL, e.g. `https://api.x.com`.
    pub base_url: String,
    pub timeout: Duration,
}

/// X answers 403 with error 453 (v1.1) or a `client-not-enrolled` problem
/// (v2) when a valid credential's access tier lacks the endpoint: the
/// credential authenticated, so it is live.
pub const LIMITED_TIER: &str =
    "live: authenticated, but its access tier does not include the endpoint checked (X error 453)";

fn is_tier_limited(body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    let v11 = v["errors"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["code"] == 453));
    let v2 = v["reason"] == "client-not-enrolled";
    v11 || v2
}

/// An answer of the X API, reduced to what `--verify` needs.
type Answer = Option<(u16, String)>;

fn verdict(answer: Answer) -> (Verification, Option<&'static str>) {
    match answer {
        Some((200..=299, _)) => (Verification::Verified, None),
        Some((403, body)) if is_tier_limited(&body) => (Verification::Verified, Some(LIMITED_TIER)),
        Some((401 | 403, _)) => (Verification::Invalid, None),
        _ => (Verification::Unknown, None),
    }
}

fn answer(response: reqwest::Result<reqwest::blocking::Response>) -> Answer {
    let r = response.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().unwrap_or_default()))
}

pub fn verify_findings(findings: &mut [Finding], opts: &VerifyOptions) {
    let client = match reqwest::blocking::Client::builder()
        .timeout(opts.timeout)
        .build()
    {
        Ok(c) => c,
        Err(_) => {
            findings
                .iter_mut()
                .for_each(|f| f.verification = Verification::Unknown);
            return;
        }
    };
    let base = opts.base_url.trim_end_matches('/');
    let get_with_bearer = |path: &str, token: &[u8]| -> Answer {
        answer(
            client
                .get(format!("{base}{path}"))
                .bearer_auth(bearer_for_header(token))
                .send(),
        )
    };
    for i in 0..findings.len() {
        let f = &findings[i];
        let v = match f.credential {
            CredentialKey::BearerToken => verdict(get_with_bearer(
                "/1.1/application/rate_limit_status.json",
                f.value.expose(),
            )),
            CredentialKey::UserAccessToken => {
                verdict(get_with_bearer("/2/users/me", f.value.expose()))
            }
            CredentialKey::ApiKey => {
                // Checkable only as a pair with a secret found beside it.
                let secret = findings.iter().find(|s| {
                    s.credential == CredentialKey::ApiKeySecret
                        && s.path == f.path
                        && s.blob == f.blob
                });
                match secret {
                    Some(secret) => {
                        let basic = basic_authorization(f.value.expose(), secret.value.expose());
                        verdict(answer(
                            client
                                .post(format!("{base}/oauth2/token"))
                                .header("Authorization", basic)
                                .header(
                                    "Content-Type",
                                    "application/x-www-form-urlencoded;charset=UTF-8",
                                )
                                .body("grant_type=client_credentials")
                                .send(),
                        ))
                    }
                    None => (Verification::Unknown, None),
                }
            }
            _ => (Verification::Unknown, None),
        };
        (findings[i].verification, findings[i].verification_reason) = v;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_refusal_is_live_and_other_refusals_are_not() {
        let ans = |status: u16, body: &str| Some((status, body.to_string()));
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
            ("429", ans(429, ""), Verification::Unknown, None),
            ("no answer", None, Verification::Unknown, None),
        ];
        for (what, a, v, reason) in cases {
            assert_eq!(verdict(a), (v, reason), "{what}");
        }
    }
}
