//! An in-process X for unit tests of code that calls `XApi`: it keeps the
//! few facts rotation depends on (which bearer token is current, which
//! access tokens are revoked, which refresh tokens are spent), logs every
//! call, and fails the next calls with errors a test queues.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use keyguard_credentials::{OAuth1Keys, SecretValue};

use crate::{RateLimit, UserTokens, XApi, XApiError};

#[derive(Debug, Default)]
struct State {
    bearer: Option<String>,
    minted: usize,
    revoked_access_tokens: HashSet<String>,
    spent_refresh_tokens: HashSet<String>,
    calls: Vec<&'static str>,
    failures: VecDeque<XApiError>,
}

#[derive(Default)]
pub struct FakeXApi {
    state: Mutex<State>,
    /// Told of every call as it is made: a test that also fakes the
    /// apiserver puts both on one timeline.
    observer: Option<Box<dyn Fn(&'static str) + Send + Sync>>,
}

impl std::fmt::Debug for FakeXApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeXApi")
            .field("state", &self.state)
            .finish()
    }
}

fn text(v: &SecretValue) -> String {
    String::from_utf8_lossy(v.expose()).into_owned()
}

fn unauthorized(endpoint: &'static str) -> XApiError {
    XApiError::Refused {
        endpoint,
        status: 401,
        detail: "code 89: Invalid or expired token.".into(),
    }
}

impl FakeXApi {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fake that tells `observer` of every call, as it is made.
    pub fn observed(observer: impl Fn(&'static str) + Send + Sync + 'static) -> Self {
        FakeXApi {
            observer: Some(Box::new(observer)),
            ..Self::default()
        }
    }

    /// The endpoints called so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The next calls fail with these errors, one each, before anything
    /// else happens.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = XApiError>) {
        self.state.lock().unwrap().failures.extend(errors);
    }

    /// The current bearer token, as if minted earlier.
    pub fn set_bearer(&self, token: &str) {
        self.state.lock().unwrap().bearer = Some(token.into());
    }

    /// Whether an OAuth 1.0a access token was revoked.
    pub fn is_revoked(&self, access_token: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .revoked_access_tokens
            .contains(access_token)
    }

    /// Logs the call and returns a queued failure, if any.
    fn enter(&self, endpoint: &'static str) -> Result<std::sync::MutexGuard<'_, State>, XApiError> {
        if let Some(observe) = &self.observer {
            observe(endpoint);
        }
        let mut s = self.state.lock().unwrap();
        s.calls.push(endpoint);
        match s.failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }
}

#[async_trait::async_trait]
impl XApi for FakeXApi {
    async fn mint_bearer(
        &self,
        _: &SecretValue,
        _: &SecretValue,
    ) -> Result<SecretValue, XApiError> {
        let mut s = self.enter("POST /oauth2/token")?;
        if s.bearer.is_none() {
            s.minted += 1;
            s.bearer = Some(format!("bearer-{}", s.minted));
        }
        Ok(SecretValue::new(s.bearer.clone().unwrap_or_default()))
    }

    async fn invalidate_bearer(
        &self,
        _: &OAuth1Keys<'_>,
        bearer: &SecretValue,
    ) -> Result<(), XApiError> {
        let mut s = self.enter("POST /oauth2/invalidate_token")?;
        if s.bearer.as_deref() != Some(text(bearer).as_str()) {
            return Err(XApiError::Refused {
                endpoint: "POST /oauth2/invalidate_token",
                status: 403,
                detail:
                    "code 348: Client application is not permitted to to invalidate this token."
                        .into(),
            });
        }
        s.bearer = None;
        Ok(())
    }

    async fn verify_bearer(&self, bearer: &SecretValue) -> Result<RateLimit, XApiError> {
        let s = self.enter("GET /1.1/application/rate_limit_status.json")?;
        match s.bearer.as_deref() == Some(text(bearer).as_str()) {
            true => Ok(RateLimit::default()),
            false => Err(unauthorized("GET /1.1/application/rate_limit_status.json")),
        }
    }

    async fn verify_user_token(&self, _: &SecretValue) -> Result<RateLimit, XApiError> {
        drop(self.enter("GET /2/users/me")?);
        Ok(RateLimit::default())
    }

    async fn verify_user_context(
        &self,
        keys: &OAuth1Keys<'_>,
    ) -> Result<(Option<String>, RateLimit), XApiError> {
        let s = self.enter("GET /1.1/account/verify_credentials.json")?;
        match s.revoked_access_tokens.contains(keys.token) {
            true => Err(unauthorized("GET /1.1/account/verify_credentials.json")),
            false => Ok((Some("read-write".into()), RateLimit::default())),
        }
    }

    async fn invalidate_access_token(&self, keys: &OAuth1Keys<'_>) -> Result<(), XApiError> {
        let mut s = self.enter("POST /1.1/oauth/invalidate_token")?;
        match s.revoked_access_tokens.insert(keys.token.to_string()) {
            true => Ok(()),
            false => Err(unauthorized("POST /1.1/oauth/invalidate_token")),
        }
    }

    async fn refresh_user_token(
        &self,
        _: &SecretValue,
        _: Option<&SecretValue>,
        refresh_token: &SecretValue,
    ) -> Result<UserTokens, XApiError> {
        let mut s = self.enter("POST /2/oauth2/token")?;
        let sent = text(refresh_token);
        if !s.spent_refresh_tokens.insert(sent.clone()) {
            return Err(XApiError::Refused {
                endpoint: "POST /2/oauth2/token",
                status: 400,
                detail: "invalid_request: Value passed for the token was invalid.".into(),
            });
        }
        Ok(UserTokens {
            access_token: SecretValue::new(format!("access-after-{sent}")),
            refresh_token: Some(SecretValue::new(format!("{sent}+"))),
            expires_in: Duration::from_secs(7200),
            scopes: vec![
                "tweet.read".into(),
                "users.read".into(),
                "offline.access".into(),
            ],
        })
    }

    async fn usage(&self, _: &SecretValue) -> Result<(u64, u64), XApiError> {
        drop(self.enter("GET /2/usage/tweets")?);
        Ok((1, 100))
    }
}
