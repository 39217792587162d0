//! The X API emulator is as strict as X: real HTTP requests, signed and
//! authenticated the way X documents, accepted; anything X would refuse,
//! refused. Signing here uses the emulator's own RFC 5849 code from the
//! outside (header text on the wire), never pre-decoded parameters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyguard_tests::x_api::oauth1::{sign, signature_base_string};
use keyguard_tests::x_api::{AccessLevel, AppCredentials, XApiEmulator};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How a test signs: what X requires, and each way to get it wrong.
#[derive(Clone)]
struct Signing {
    method: &'static str,
    timestamp: u64,
    nonce: String,
    /// The base URL signed (normally the one requested).
    signed_url: Option<String>,
    realm: bool,
}

impl Signing {
    fn good() -> Signing {
        Signing {
            method: "HMAC-SHA1",
            timestamp: now(),
            nonce: format!("nonce{}", fastrand::u64(..)),
            signed_url: None,
            realm: false,
        }
    }
}

/// `Authorization: OAuth ...` for a GET of `url` with `query`.
fn oauth_header(app: &AppCredentials, url: &str, query: &[(&str, &str)], s: &Signing) -> String {
    let mut oauth = vec![
        ("oauth_consumer_key".to_string(), app.api_key.clone()),
        ("oauth_nonce".to_string(), s.nonce.clone()),
        ("oauth_signature_method".to_string(), s.method.to_string()),
        ("oauth_timestamp".to_string(), s.timestamp.to_string()),
        ("oauth_token".to_string(), app.access_token.clone()),
        ("oauth_version".to_string(), "1.0".to_string()),
    ];
    let mut params = oauth.clone();
    params.extend(query.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let base = signature_base_string("GET", s.signed_url.as_deref().unwrap_or(url), &params);
    oauth.push((
        "oauth_signature".to_string(),
        sign(&base, &app.api_key_secret, &app.access_token_secret),
    ));
    let mut parts: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", enc(k), enc(v)))
        .collect();
    if s.realm {
        parts.insert(0, "realm=\"http://api.x.com/\"".to_string());
    }
    format!("OAuth {}", parts.join(", "))
}

async fn verify_credentials(
    x: &XApiEmulator,
    app: &AppCredentials,
    s: &Signing,
) -> reqwest::Response {
    let url = format!("{}/1.1/account/verify_credentials.json", x.base_url());
    let query = [("include_email", "false"), ("skip_status", "true")];
    reqwest::Client::new()
        .get(&url)
        .query(&query)
        .header("Authorization", oauth_header(app, &url, &query, s))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn oauth1_requests_are_checked_as_x_checks_them() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::ReadWrite);
    let good = Signing::good();
    let ok = verify_credentials(&x, &app, &good).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-access-level"], "read-write");
    let with_realm = Signing {
        realm: true,
        ..Signing::good()
    };
    assert_eq!(
        verify_credentials(&x, &app, &with_realm).await.status(),
        200,
        "realm is not signed"
    );

    let other_host = x.base_url().replace("127.0.0.1", "localhost");
    let cases = [
        ("the same nonce again", good.clone()),
        (
            "PLAINTEXT",
            Signing {
                method: "PLAINTEXT",
                ..Signing::good()
            },
        ),
        (
            "a timestamp an hour old",
            Signing {
                timestamp: now() - 3600,
                ..Signing::good()
            },
        ),
        (
            "a timestamp an hour ahead",
            Signing {
                timestamp: now() + 3600,
                ..Signing::good()
            },
        ),
        (
            "another host signed than requested",
            Signing {
                signed_url: Some(format!("{other_host}/1.1/account/verify_credentials.json")),
                ..Signing::good()
            },
        ),
    ];
    for (what, signing) in cases {
        let r = verify_credentials(&x, &app, &signing).await;
        assert_eq!(r.status(), 401, "{what}");
    }
    let forged = AppCredentials {
        access_token_secret: "wrong".into(),
        ..app.clone()
    };
    assert_eq!(
        verify_credentials(&x, &forged, &Signing::good())
            .await
            .status(),
        401,
        "wrong token secret"
    );
}

async fn token(x: &XApiEmulator, basic: &str, content_type: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/oauth2/token", x.base_url()))
        .header("Authorization", basic)
        .body("grant_type=client_credentials");
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn bearer_tokens_are_minted_and_accepted_as_x_does() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    let basic = keyguard_credentials::basic_authorization(
        app.api_key.as_bytes(),
        app.api_key_secret.as_bytes(),
    );
    let form = Some("application/x-www-form-urlencoded;charset=UTF-8");
    assert_eq!(
        token(&x, &basic, None).await.status(),
        403,
        "no form content type"
    );
    let wrong = keyguard_credentials::basic_authorization(app.api_key.as_bytes(), b"wrong-secret");
    assert_eq!(token(&x, &wrong, form).await.status(), 403);
    let body: serde_json::Value = token(&x, &basic, form).await.json().await.unwrap();
    let issued = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["token_type"], "bearer");
    assert!(issued.contains('%'), "X hands the token out URL-encoded");
    let again: serde_json::Value = token(&x, &basic, form).await.json().await.unwrap();
    assert_eq!(
        again["access_token"],
        issued.as_str(),
        "the same token until invalidated"
    );

    let get = |header: String| {
        let url = format!("{}/1.1/application/rate_limit_status.json", x.base_url());
        async move {
            reqwest::Client::new()
                .get(url)
                .header("Authorization", header)
                .send()
                .await
                .unwrap()
        }
    };
    let decoded = keyguard_credentials::bearer_for_header(issued.as_bytes());
    assert_eq!(get(format!("Bearer {decoded}")).await.status(), 200);
    assert_eq!(
        get(format!("Bearer {issued}")).await.status(),
        200,
        "as issued, as tweepy sends it"
    );
    // Certainly another token: its last character changed to one it is not
    // (replacing it with `x` left it unchanged one time in 62).
    let last = decoded.chars().last().unwrap();
    let changed = if last == 'x' { 'y' } else { 'x' };
    let other = format!("Bearer {}{changed}", &decoded[..decoded.len() - 1]);
    assert_eq!(get(other).await.status(), 401, "any other token");
}

#[tokio::test]
async fn user_tokens_expire_refresh_tokens_are_single_use_and_clients_authenticate() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    x.set_user_token_lifetime(Duration::from_secs(3600));
    let refresh = |token: String, basic: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/2/oauth2/token", x.base_url()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&client_id={}&refresh_token={}",
                enc(&app.client_id),
                enc(&token)
            ));
        if let Some(b) = basic {
            req = req.header("Authorization", b);
        }
        async move { req.send().await.unwrap() }
    };
    let basic = keyguard_credentials::basic_authorization(
        app.client_id.as_bytes(),
        app.client_secret.as_bytes(),
    );
    assert_eq!(
        refresh(app.refresh_token.clone(), None).await.status(),
        401,
        "a confidential client must send Basic auth"
    );
    let first = refresh(app.refresh_token.clone(), Some(basic.clone())).await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["expires_in"], 3600);
    let spent = refresh(app.refresh_token.clone(), Some(basic.clone())).await;
    assert_eq!(spent.status(), 400, "a refresh token is single use");
    let spent: serde_json::Value = spent.json().await.unwrap();
    assert_eq!(spent["error"], "invalid_request");
    let next = refresh(
        first["refresh_token"].as_str().unwrap().to_string(),
        Some(basic),
    )
    .await;
    assert_eq!(next.status(), 200, "its successor works");

    let me = |token: String| {
        let url = format!("{}/2/users/me", x.base_url());
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let access = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(me(access.clone()).await, 200);
    x.expire_user_tokens(&app.api_key);
    assert_eq!(me(access).await, 401, "an expired access token is refused");
}

#[tokio::test]
async fn rate_limits_are_enforced_per_app_and_endpoint_with_a_fixed_reset() {
    let x = XApiEmulator::start().await;
    x.set_rate_limit(3);
    let a = x.create_app(AccessLevel::Read);
    let b = x.create_app(AccessLevel::Read);
    let get = |token: String| {
        let url = format!("{}/1.1/application/rate_limit_status.json", x.base_url());
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let header = |r: &reqwest::Response, name: &str| -> u64 {
        r.headers()[name].to_str().unwrap().parse().unwrap()
    };
    let token_a = keyguard_credentials::bearer_for_header(x.mint_bearer(&a.api_key).as_bytes());
    let token_b = keyguard_credentials::bearer_for_header(x.mint_bearer(&b.api_key).as_bytes());
    let mut resets = Vec::new();
    for expected_remaining in [2, 1, 0] {
        let r = get(token_a.clone()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-rate-limit-limit"), 3);
        assert_eq!(header(&r, "x-rate-limit-remaining"), expected_remaining);
        resets.push(header(&r, "x-rate-limit-reset"));
    }
    assert!(
        resets.windows(2).all(|w| w[0] == w[1]) && resets.len() == 3,
        "one reset per window: {resets:?}"
    );
    assert!(resets[0] > now() && resets[0] <= now() + 900);
    let limited = get(token_a.clone()).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "x-rate-limit-remaining"), 0);
    assert_eq!(
        header(&limited, "x-rate-limit-reset"),
        resets[0],
        "wait until the window's reset"
    );
    assert_eq!(
        get(token_b).await.status(),
        200,
        "another app has its own window"
    );
}

/// X's documented limits per endpoint (their reference pages), one window
/// per app for app-only bearer tokens however the token is written, and a
/// v1.1 429 in v1.1's error shape (code 88).
#[tokio::test]
async fn documented_limits_per_endpoint_one_window_per_app_and_v11_code_88() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    let issued = x.mint_bearer(&app.api_key);
    let decoded = keyguard_credentials::bearer_for_header(issued.as_bytes());
    let get = |path: &str, token: String| {
        let url = format!("{}{path}", x.base_url());
        async move {
            reqwest::Client::new()
                .get(url)
                .header("Authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
        }
    };
    let header = |r: &reqwest::Response, name: &str| -> u64 {
        r.headers()[name].to_str().unwrap().parse().unwrap()
    };
    let status = "/1.1/application/rate_limit_status.json";
    let first = get(status, decoded.clone()).await;
    assert_eq!(header(&first, "x-rate-limit-limit"), 180);
    let second = get(status, issued.clone()).await;
    assert_eq!(
        header(&second, "x-rate-limit-remaining"),
        header(&first, "x-rate-limit-remaining") - 1,
        "the decoded and the issued form of one app's token share its window"
    );
    let usage = get("/2/usage/tweets", decoded.clone()).await;
    assert_eq!(header(&usage, "x-rate-limit-limit"), 50);

    x.set_rate_limit(1);
    let other = x.create_app(AccessLevel::Read);
    let token = keyguard_credentials::bearer_for_header(x.mint_bearer(&other.api_key).as_bytes());
    assert_eq!(get(status, token.clone()).await.status(), 200);
    let limited = get(status, token).await;
    assert_eq!(limited.status(), 429);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], 88, "{body}");
}

/// `keyguard-x-emulator --tier free` (for people trying the operator on a
/// Free-tier app): its apps' valid credentials mint a bearer token, and the
/// app-only reads answer X's 403 with error 453; `--tier basic` serves them.
#[tokio::test]
async fn the_emulator_binary_serves_the_tier_it_is_told() {
    for (tier, want) in [("free", 403), ("basic", 200)] {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("sources.yaml");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyguard-x-emulator"))
            .args(["--tier", tier, "--source-secret", "keys", "--write-secrets"])
            .arg(&secrets)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut base = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut base)
            .await
            .unwrap();
        let base = base.trim().to_string();
        let manifest: serde_yaml::Value = serde_yaml::from_str(
            std::fs::read_to_string(&secrets)
                .unwrap()
                .trim_start_matches("---\n"),
        )
        .unwrap();
        let data = &manifest["stringData"];
        let basic = keyguard_credentials::basic_authorization(
            data["apiKey"].as_str().unwrap().as_bytes(),
            data["apiKeySecret"].as_str().unwrap().as_bytes(),
        );
        let http = reqwest::Client::new();
        let minted: serde_json::Value = http
            .post(format!("{base}/oauth2/token"))
            .header("Authorization", basic)
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = minted["access_token"]
            .as_str()
            .expect("a bearer token on every tier");
        let read = http
            .get(format!("{base}/1.1/application/rate_limit_status.json"))
            .header("Authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status().as_u16(), want, "tier {tier}");
        if tier == "free" {
            let body: serde_json::Value = read.json().await.unwrap();
            assert_eq!(body["errors"][0]["code"], 453, "{body}");
        }
        child.kill().await.unwrap();
    }
}

/// X's Free tier serves `GET /2/users/me` within a 24-hour limit per user,
/// announced in `x-user-limit-24hour-*` headers; past it, 429. The client
/// waits for that window's reset, not the 15-minute one.
#[tokio::test]
async fn the_free_tier_limits_users_me_per_user_per_day_and_the_client_waits_for_it() {
    use keyguard_operator::xapi::{XApi, XApiClient, XApiError};
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    x.limit_access_tier(&app.api_key);
    x.set_daily_limit(2);
    let token = x.mint_user_token(&app.api_key);
    let me = || async {
        reqwest::Client::new()
            .get(format!("{}/2/users/me", x.base_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
    };
    let header = |r: &reqwest::Response, name: &str| -> u64 {
        r.headers()[name].to_str().unwrap().parse().unwrap()
    };
    let first = me().await;
    assert_eq!(first.status(), 200, "Free serves users/me");
    assert_eq!(header(&first, "x-user-limit-24hour-limit"), 2);
    assert_eq!(header(&first, "x-user-limit-24hour-remaining"), 1);
    let reset = header(&first, "x-user-limit-24hour-reset");
    assert!((now() + 24 * 3600 - 5..=now() + 24 * 3600).contains(&reset));
    assert_eq!(me().await.status(), 200);
    let spent = me().await;
    assert_eq!(spent.status(), 429);
    assert_eq!(header(&spent, "x-user-limit-24hour-remaining"), 0);

    let client = XApiClient::new(x.base_url(), Duration::from_secs(5)).unwrap();
    let answer = client
        .verify_user_token(&keyguard_credentials::SecretValue::new(token.clone()))
        .await;
    let Err(e @ XApiError::RateLimited { .. }) = answer else {
        panic!("a spent daily window is a rate limit: {answer:?}");
    };
    let wait = e.retry_after().unwrap().as_secs();
    assert!(
        wait > 23 * 3600,
        "waits for the 24-hour reset, not 15 minutes: {wait}s"
    );
    assert!(e.to_string().contains("rate limited until"), "{e}");
}

/// `POST /2/oauth2/revoke` as X's OAuth 2.0 guide describes it: the
/// client's id, and Basic for a confidential client; a public client
/// revokes with its id alone.
#[tokio::test]
async fn revoking_a_token_needs_the_client_to_authenticate() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    let token = x.mint_user_token(&app.api_key);
    let revoke = |basic: Option<String>, token: String, client_id: String| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/2/oauth2/revoke", x.base_url()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={}&client_id={}&token_type_hint=access_token",
                enc(&token),
                enc(&client_id)
            ));
        if let Some(b) = basic {
            req = req.header("Authorization", b);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let me = |token: String| {
        let url = format!("{}/2/users/me", x.base_url());
        async move {
            let r = reqwest::Client::new().get(url).bearer_auth(token).send();
            r.await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        revoke(None, token.clone(), app.client_id.clone()).await,
        401
    );
    assert_eq!(me(token.clone()).await, 200, "not revoked without Basic");
    let basic = keyguard_credentials::basic_authorization(
        app.client_id.as_bytes(),
        app.client_secret.as_bytes(),
    );
    assert_eq!(
        revoke(Some(basic), token.clone(), app.client_id.clone()).await,
        200
    );
    assert_eq!(me(token).await, 401, "revoked");

    x.make_public_client(&app.api_key);
    let token = x.mint_user_token(&app.api_key);
    assert_eq!(
        revoke(None, token.clone(), String::new()).await,
        401,
        "no client_id"
    );
    assert_eq!(
        revoke(None, token.clone(), app.client_id.clone()).await,
        200
    );
    assert_eq!(me(token).await, 401);
}
