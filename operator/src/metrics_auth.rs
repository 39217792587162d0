//! Who may read `/metrics`. The metrics name every tenant's namespaces,
//! resources and environments, so they are served only over TLS and only
//! to a bearer token the apiserver authenticates (TokenReview) whose user
//! may `get` the non-resource URL `/metrics` (SubjectAccessReview), as
//! kube-rbac-proxy and controller-runtime's secure metrics do. The chart's
//! `<release>-metrics-reader` ClusterRole grants exactly that.
//!
//! Answers are kept for a minute per token digest (never the token), so a
//! scrape every 30 seconds costs the apiserver two reviews a minute per
//! scraper, and a revoked binding stops scrapes within a minute. Made-up
//! tokens are reviewed a few at a time and fill only the denied answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use sha2::Digest;

/// How long an answer is kept.
const KEEP_FOR: Duration = Duration::from_secs(60);
/// Answers kept at most, of each kind: a flood of made-up tokens fills
/// only the denied answers, never pushing out a scraper's allowed one.
const KEPT_AT_MOST: usize = 1024;
/// Reviews in flight at once: a flood of made-up tokens costs the
/// apiserver at most this many requests at a time on the operator's
/// behalf (its priority level is shared with the reconciles).
const REVIEWS_AT_ONCE: usize = 4;
/// How long a scrape waits for a review slot before answering 503.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(2);

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
    allowed: Mutex<HashMap<String, Instant>>,
    denied: Mutex<HashMap<String, (Instant, Decision)>>,
    slots: tokio::sync::Semaphore,
}

impl MetricsAuth {
    pub fn new(client: Client) -> MetricsAuth {
        MetricsAuth {
            client,
            allowed: Mutex::new(HashMap::new()),
            denied: Mutex::new(HashMap::new()),
            slots: tokio::sync::Semaphore::new(REVIEWS_AT_ONCE),
        }
    }

    /// The decision for a request carrying `authorization` (the header).
    pub async fn decide(&self, authorization: Option<&str>) -> Decision {
        let Some(token) = bearer(authorization) else {
            return Decision::Unauthenticated;
        };
        let key = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        if let Some(kept) = self.kept_answer(&key) {
            return kept;
        }
        let Ok(Ok(_slot)) = tokio::time::timeout(WAIT_FOR_SLOT, self.slots.acquire()).await else {
            return Decision::Unavailable;
        };
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
        let fresh = |at: &Instant| at.elapsed() < KEEP_FOR;
        let allowed = self.allowed.lock().unwrap_or_else(|p| p.into_inner());
        if allowed.get(key).is_some_and(fresh) {
            return Some(Decision::Allowed);
        }
        let denied = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        denied.get(key).filter(|(at, _)| fresh(at)).map(|(_, d)| *d)
    }

    fn keep(&self, key: String, decision: Decision) {
        let fresh = |at: &Instant| at.elapsed() < KEEP_FOR;
        if decision == Decision::Allowed {
            let mut kept = self.allowed.lock().unwrap_or_else(|p| p.into_inner());
            kept.retain(|_, at| fresh(at));
            if kept.len() < KEPT_AT_MOST {
                kept.insert(key, Instant::now());
            }
            return;
        }
        let mut kept = self.denied.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|_, (at, _)| fresh(at));
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
