//! `--verify` against the X API emulator: live credentials are verified,
//! dead ones invalid, and nothing is spent or changed by asking.

use crate::support::*;
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};

#[tokio::test(flavor = "multi_thread")]
async fn verify_tells_live_from_dead_without_spending_anything() {
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    let live_bearer = x.mint_bearer(&app.api_key);
    let user_token = x.mint_user_token(&app.api_key);
    let limited = x.create_app(AccessLevel::Read);
    x.limit_access_tier(&limited.api_key);
    let limited_bearer = x.mint_bearer(&limited.api_key);
    let repo = Repo::new();
    repo.write("limited.env", &format!("X_BEARER_TOKEN={limited_bearer}\n"));
    repo.write("live.env", &format!("X_BEARER_TOKEN={live_bearer}\n"));
    repo.write("dead.env", &format!("X_BEARER_TOKEN={BEARER}\n"));
    repo.write(
        "keys.py",
        &format!(
            "consumer_key = \"{}\"\nconsumer_secret = \"{}\"\n",
            app.api_key, app.api_key_secret
        ),
    );
    repo.write(
        "user.json",
        &format!(
            "{{\"access_token\": \"{user_token}\", \"refresh_token\": \"{}\"}}\n",
            app.refresh_token
        ),
    );

    let (dir, base) = (repo.path().to_path_buf(), x.base_url().to_string());
    let out = tokio::task::spawn_blocking(move || {
        keyguard(
            &[
                "scan",
                "--verify",
                "--x-api-base",
                &base,
                "--format",
                "json",
                ".",
            ],
            &dir,
        )
    })
    .await
    .unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    // Every form a value travels in, not only the raw one.
    let secrets = keyguard_tests::leaks::Secrets::new([
        limited_bearer.as_str(),
        live_bearer.as_str(),
        user_token.as_str(),
        app.api_key_secret.as_str(),
        app.refresh_token.as_str(),
    ])
    .pair(&app.api_key, &app.api_key_secret);
    keyguard_tests::leaks::assert_no_leak("stdout", &out.stdout, &secrets);
    keyguard_tests::leaks::assert_no_leak("stderr", &out.stderr, &secrets);
    let report = json(&out);
    let verification = |path: &str, rule: &str| {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path && f["ruleId"] == rule)
            .unwrap_or_else(|| panic!("no {rule} in {path}: {report:#}"))["verification"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verification("live.env", "x-bearer-token"), "verified");
    // X's 403 with error 453: valid, but not for that endpoint's tier.
    assert_eq!(verification("limited.env", "x-bearer-token"), "verified");
    let limited_finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "limited.env")
        .unwrap();
    assert!(
        limited_finding["verificationReason"]
            .as_str()
            .unwrap()
            .contains("453"),
        "{limited_finding}"
    );
    let others: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] != "limited.env")
        .collect();
    assert!(others.len() >= 5, "{report:#}");
    assert!(others
        .iter()
        .filter(|f| f["path"] != "keys.py")
        .all(|f| f.get("verificationReason").is_none()));
    assert_eq!(verification("dead.env", "x-bearer-token"), "invalid");
    // Without --verify-consumer-keys a pair is not checked: X's only check
    // is its token endpoint, a write for an app without a bearer token.
    assert_eq!(verification("keys.py", "x-api-key"), "unknown");
    assert_eq!(verification("keys.py", "x-api-key-secret"), "unknown");
    assert_eq!(
        verification("user.json", "x-oauth2-user-access-token"),
        "verified"
    );
    assert_eq!(
        verification("user.json", "x-oauth2-refresh-token"),
        "unknown"
    );

    // Asking changed nothing: no refresh was spent, no token invalidated.
    let requests = x.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("/2/oauth2/token") || r.contains("invalidate")),
        "{requests:?}"
    );
    assert_eq!(
        x.current_bearer(&app.api_key).as_deref(),
        Some(live_bearer.as_str())
    );
    assert!(
        !requests.iter().any(|r| r == "POST /oauth2/token"),
        "no token endpoint call without --verify-consumer-keys: {requests:?}"
    );

    // An app without a bearer token: asked explicitly, the pair is checked
    // (and X creates its bearer token, which the flag's help says).
    let fresh = x.create_app(AccessLevel::Read);
    let repo = Repo::new();
    repo.write(
        "keys.py",
        &format!(
            "consumer_key = \"{}\"\nconsumer_secret = \"{}\"\n",
            fresh.api_key, fresh.api_key_secret
        ),
    );
    let (dir, base) = (repo.path().to_path_buf(), x.base_url().to_string());
    let out = tokio::task::spawn_blocking(move || {
        keyguard(
            &[
                "scan",
                "--verify",
                "--verify-consumer-keys",
                "--x-api-base",
                &base,
                "--format",
                "json",
                ".",
            ],
            &dir,
        )
    })
    .await
    .unwrap();
    let report = json(&out);
    let key = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["ruleId"] == "x-api-key")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(key["verification"], "verified", "{key}");
}
