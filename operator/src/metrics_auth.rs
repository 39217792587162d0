//! Who may read `/metrics`. The metrics name every tenant's namespaces,
//! resources and environments, so they are served only over TLS and only
//! to a bearer token the apiserver authenticates (TokenReview) whose user
//! may `get` the non-resource URL `/metrics` (SubjectAccessReview), as
//! kube-rbac-proxy and controller-runtime's secure metrics do. The chart's
//! `<release>-metrics-reader` ClusterRole grants exactly that.
//!
//! Answers are kept for a minute per token fingerprint (never the token),
//! so a scrape every 30 seconds costs the apiserver two reviews a minute
//! per scraper, and a revoked binding stops scrapes within a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};

/// How long an answer is kept.
const KEEP_FOR: Duration = Duration::from_secs(60);
/// Answers kept at most (a flood of random tokens cannot grow memory).
const KEPT_AT_MOST: usize = 1024;

/// The answer to one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No bearer token, or one the apiserver does not authenticate: 401.
    Unauthenticated,
    /// Authenticated, but not allowed to `get /metrics`: 403.
    Forbidden,
    /// The apiserver could not be asked: 503, and nothing is kept.
    Unavailable,
}

/// Reviews scrapers' tokens with the apiserver.
pub struct MetricsAuth {
    client: Client,
    kept: Mutex<HashMap<String, (Instant, Decision)>>,
}

impl MetricsAuth {
    pub fn new(client: Client) -> MetricsAuth {
        MetricsAuth {
            client,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// The decision for a request carrying `authorization` (the header).
    pub async fn decide(&self, authorization: Option<&str>) -> Decision {
        let Some(token) = bearer(authorization) else {
            return Decision::Unauthenticated;
        };
        let key = keyguard_credentials::fingerprint(token.as_bytes()).to_string();
        if let Some(kept) = self.kept_answer(&key) {
            return kept;
        }
        let decision = match self.review(token).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not review a metrics scraper's token");
                return Decision::Unavailable;
            }
        };
        self.keep(key, decision);
        decision
    }

    fn kept_answer(&self, key: &str) -> Option<Decision> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let (at, decision) = kept.get(key)?;
        (at.elapsed() < KEEP_FOR).then_some(*decision)
    }

    fn keep(&self, key: String, decision: Decision) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|_, (at, _)| at.elapsed() < KEEP_FOR);
        if kept.len() < KEPT_AT_MOST {
            kept.insert(key, (Instant::now(), decision));
        }
    }

    /// TokenReview, then SubjectAccessReview of the user it names.
    async fn review(&self, token: &str) -> kube::Result<Decision> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let status = reviewed.status.unwrap_or_default();
        let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
            return Ok(Decision::Unauthenticated);
        };
        let subject = crate::authorization::Subject {
            user: user.username,
            groups: user.groups,
            uid: user.uid,
            extra: user.extra,
        };
        let action = crate::authorization::Action::Path {
            path: "/metrics".into(),
            verb: "get".into(),
        };
        let allowed = crate::authorization::allowed(&self.client, &subject, &action).await?;
        Ok(if allowed {
            Decision::Allowed
        } else {
            Decision::Forbidden
        })
    }
}

/// Pure: the token of an `Authorization: Bearer <token>` header.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_header_carries_a_token() {
        let cases = [
            (None, None),
            (Some(""), None),
            (Some("Bearer"), None),
            (Some("Bearer "), None),
            (Some("Basic dXNlcjpwYXNz"), None),
            (Some("Bearer abc.def"), Some("abc.def")),
            (Some("bearer  abc "), Some("abc")),
        ];
        for (header, want) in cases {
            assert_eq!(bearer(header), want, "{header:?}");
        }
    }
}
