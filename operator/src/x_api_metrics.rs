//! The X API as the operator calls it: every call counted by endpoint and
//! outcome and timed (`keyguard_x_api_requests_total`,
//! `keyguard_x_api_request_duration_seconds`), as External Secrets counts
//! its provider calls. `Context::new` wraps whatever client it is given.

use std::time::Instant;

use keyguard_credentials::{OAuth1Keys, SecretValue};

use crate::metrics::Metrics;
use crate::xapi::{RateLimit, UserTokens, XApi, XApiError};

/// Pure: the `status` label of a call's result: `2xx`, X's HTTP status
/// (`401`, `429`, `503`, …), or `transport` when no answer came.
pub fn status_of<T>(result: &Result<T, XApiError>) -> String {
    match result {
        Ok(_) => "2xx".into(),
        Err(XApiError::Refused { status, .. }) => status.to_string(),
        Err(XApiError::RateLimited { .. }) => "429".into(),
        Err(XApiError::Transport { .. }) => "transport".into(),
    }
}

/// An X API client whose every call is counted and timed.
pub struct MeteredXApi<X> {
    inner: X,
    metrics: Metrics,
}

impl<X: XApi> MeteredXApi<X> {
    pub fn new(inner: X, metrics: Metrics) -> Self {
        MeteredXApi { inner, metrics }
    }

    fn record<T>(&self, endpoint: &'static str, started: Instant, result: &Result<T, XApiError>) {
        self.metrics
            .x_api_call(endpoint, &status_of(result), started.elapsed());
    }
}

/// Calls `inner.$method(args)` and records it under `$endpoint`.
macro_rules! metered {
    ($self:ident, $endpoint:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        $self.record($endpoint, started, &result);
        result
    }};
}

#[async_trait::async_trait]
impl<X: XApi> XApi for MeteredXApi<X> {
    async fn mint_bearer(
        &self,
        api_key: &SecretValue,
        api_key_secret: &SecretValue,
    ) -> Result<SecretValue, XApiError> {
        metered!(
            self,
            "POST /oauth2/token",
            self.inner.mint_bearer(api_key, api_key_secret)
        )
    }

    async fn invalidate_bearer(
        &self,
        owner: &OAuth1Keys<'_>,
        bearer: &SecretValue,
    ) -> Result<(), XApiError> {
        metered!(
            self,
            "POST /oauth2/invalidate_token",
            self.inner.invalidate_bearer(owner, bearer)
        )
    }

    async fn verify_bearer(&self, bearer: &SecretValue) -> Result<RateLimit, XApiError> {
        metered!(
            self,
            "GET /1.1/application/rate_limit_status.json",
            self.inner.verify_bearer(bearer)
        )
    }

    async fn verify_user_token(&self, token: &SecretValue) -> Result<RateLimit, XApiError> {
        metered!(self, "GET /2/users/me", self.inner.verify_user_token(token))
    }

    async fn verify_user_context(
        &self,
        keys: &OAuth1Keys<'_>,
    ) -> Result<(Option<String>, RateLimit), XApiError> {
        metered!(
            self,
            "GET /1.1/account/verify_credentials.json",
            self.inner.verify_user_context(keys)
        )
    }

    async fn invalidate_access_token(&self, keys: &OAuth1Keys<'_>) -> Result<(), XApiError> {
        metered!(
            self,
            "POST /1.1/oauth/invalidate_token",
            self.inner.invalidate_access_token(keys)
        )
    }

    async fn refresh_user_token(
        &self,
        client_id: &SecretValue,
        client_secret: Option<&SecretValue>,
        refresh_token: &SecretValue,
    ) -> Result<UserTokens, XApiError> {
        metered!(
            self,
            "POST /2/oauth2/token",
            self.inner
                .refresh_user_token(client_id, client_secret, refresh_token)
        )
    }

    async fn usage(&self, bearer: &SecretValue) -> Result<(u64, u64), XApiError> {
        metered!(self, "GET /2/usage/tweets", self.inner.usage(bearer))
    }

    // `verify_source_user_context` keeps the trait's default, which calls
    // the metered `verify_user_context` above.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xapi::fake::FakeXApi;

    #[tokio::test]
    async fn every_call_is_counted_by_endpoint_and_status_and_timed() {
        let metrics = Metrics::default();
        let fake = FakeXApi::new();
        fake.fail_next([XApiError::from_answer("POST /oauth2/token", 503, "<html>")]);
        let x = MeteredXApi::new(fake, metrics.clone());
        let key = SecretValue::new("k");
        assert!(x.mint_bearer(&key, &key).await.is_err());
        let token = x.mint_bearer(&key, &key).await.unwrap();
        x.verify_bearer(&token).await.unwrap();
        let text = metrics.render();
        for line in [
            r#"keyguard_x_api_requests_total{endpoint="POST /oauth2/token",status="503"} 1"#,
            r#"keyguard_x_api_requests_total{endpoint="POST /oauth2/token",status="2xx"} 1"#,
            r#"keyguard_x_api_requests_total{endpoint="GET /1.1/application/rate_limit_status.json",status="2xx"} 1"#,
            r#"keyguard_x_api_request_duration_seconds_count{endpoint="POST /oauth2/token"} 2"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(!text.contains(&String::from_utf8_lossy(token.expose()).to_string()));
    }

    #[test]
    fn statuses_name_what_x_answered() {
        let cases: [(Result<(), XApiError>, &str); 4] = [
            (Ok(()), "2xx"),
            (Err(XApiError::from_answer("e", 401, "{}")), "401"),
            (
                Err(XApiError::RateLimited {
                    endpoint: "e",
                    reset: None,
                }),
                "429",
            ),
            (
                Err(XApiError::Transport {
                    endpoint: "e",
                    message: "refused".into(),
                }),
                "transport",
            ),
        ];
        for (result, want) in cases {
            assert_eq!(status_of(&result), want);
        }
    }
}
