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

fn status_to_verification(status: Option<u16>) -> Verification {
    match status {
        Some(200..=299) => Verification::Verified,
        Some(401 | 403) => Verification::Invalid,
        _ => Verification::Unknown,
    }
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
    let get_with_bearer = |path: &str, token: &[u8]| -> Option<u16> {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(bearer_for_header(token))
            .send()
            .ok()
            .map(|r| r.status().as_u16())
    };
    for i in 0..findings.len() {
        let f = &findings[i];
        let v = match f.credential {
            CredentialKey::BearerToken => status_to_verification(get_with_bearer(
                "/1.1/application/rate_limit_status.json",
                f.value.expose(),
            )),
            CredentialKey::UserAccessToken => {
                status_to_verification(get_with_bearer("/2/users/me", f.value.expose()))
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
                        let status = client
                            .post(format!("{base}/oauth2/token"))
                            .header("Authorization", basic)
                            .header(
                                "Content-Type",
                                "application/x-www-form-urlencoded;charset=UTF-8",
                            )
                            .body("grant_type=client_credentials")
                            .send()
                            .ok()
                            .map(|r| r.status().as_u16());
                        status_to_verification(status)
                    }
                    None => Verification::Unknown,
                }
            }
            _ => Verification::Unknown,
        };
        findings[i].verification = v;
    }
    // A secret shares the result of the key it was checked with.
    for i in 0..findings.len() {
        if findings[i].credential == CredentialKey::ApiKeySecret {
            let key = findings.iter().find(|k| {
                k.credential == CredentialKey::ApiKey
                    && k.path == findings[i].path
                    && k.blob == findings[i].blob
            });
            findings[i].verification = key.map_or(Verification::Unknown, |k| k.verification);
        }
    }
}
