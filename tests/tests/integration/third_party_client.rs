//! The emulator follows the X API protocol, not only our client: tweepy
//! (the Python X client from PyPI, installed by scripts/test.sh into a
//! virtualenv in the cache) mints a bearer token, uses it, and signs an
//! OAuth 1.0a request against it; its OAuth 2.0 handler refreshes a user
//! token, whose access token reads /2/users/me; it parses X's 453 and a
//! Free-tier 429. requests-oauthlib signs the bearer invalidation, which
//! tweepy has no call for. The clients talk to https://api.twitter.com
//! through their own proxy and CA settings (`HTTPS_PROXY`,
//! `REQUESTS_CA_BUNDLE`): nothing in them is patched.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use keyguard_tests::control_plane::cache_root;
use keyguard_tests::repo_root;
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};

/// The Python with tweepy: `$KEYGUARD_PYTHON`, else the cache's virtualenv.
fn python() -> PathBuf {
    let python = std::env::var_os("KEYGUARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_root().join("python/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import tweepy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import tweepy: run scripts/test.sh (it creates that virtualenv with \
         `python3 -m venv` and `pip install tweepy==4.17.0`) or set KEYGUARD_PYTHON",
        python.display()
    );
    python
}

/// A forward proxy that only tunnels (HTTP CONNECT) to `api.twitter.com:443`,
/// delivering it to `front` (host:port): the Python clients reach the
/// emulator under X's own name, through their own proxy support, with no
/// patch of their transport. Returns its URL and the targets it was asked.
async fn connect_proxy(front: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = asked.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(tunnel(client, front.clone(), log.clone()));
        }
    });
    (url, asked)
}

async fn tunnel(mut client: TcpStream, front: String, asked: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let target = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    asked.lock().unwrap().push(target.clone());
    if !text.starts_with("CONNECT ") || target != "api.twitter.com:443" {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(&front).await else {
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tweepy_authenticates_against_the_emulator() {
    let python = python();
    // https://api.twitter.com as the clients know it: a proxy tunnels to a
    // TLS front with a certificate for that name from a private CA, which
    // relays to the emulator (which checks signatures over https URLs).
    let x = XApiEmulator::start_behind_tls().await;
    let backend = x.base_url().trim_start_matches("http://").to_string();
    let (front, ca) = crate::x_api_tls::tls_front_for(backend, &["api.twitter.com"]).await;
    let (proxy, asked) = connect_proxy(front.trim_start_matches("https://").to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let app = x.create_app(AccessLevel::Read);
    let free = x.create_app(AccessLevel::Read);
    x.limit_access_tier(&free.api_key);
    x.set_daily_limit(1);
    let free_user_token = x.mint_user_token(&free.api_key);
    let script = repo_root().join("tests/python/tweepy_against_emulator.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("HTTPS_PROXY", &proxy)
            .env("https_proxy", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env("REQUESTS_CA_BUNDLE", &ca_file)
            .env("X_API_KEY", &app.api_key)
            .env("X_API_KEY_SECRET", &app.api_key_secret)
            .env("X_ACCESS_TOKEN", &app.access_token)
            .env("X_ACCESS_TOKEN_SECRET", &app.access_token_secret)
            .env("X_CLIENT_ID", &app.client_id)
            .env("X_CLIENT_SECRET", &app.client_secret)
            .env("X_REFRESH_TOKEN", &app.refresh_token)
            .env("X_FREE_API_KEY", &free.api_key)
            .env("X_FREE_API_KEY_SECRET", &free.api_key_secret)
            .env("X_FREE_USER_TOKEN", &free_user_token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "app-only bearer: minted and accepted",
        "OAuth 1.0a user context: verified",
        "OAuth 1.0a with a wrong token secret: refused",
        "bearer invalidation: OAuth 1.0a with the owner's token accepted, Basic refused, old token then 401/89",
        "OAuth 2.0 refresh: new access and refresh tokens",
        "OAuth 2.0 refresh with a spent token: refused",
        "GET /2/users/me with the user access token:",
        "Free tier v1.1 read: 403 with code 453",
        "Free tier users/me past its 24-hour limit: 429",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
    let requests = x.requests();
    for endpoint in [
        "POST /oauth2/token",
        "GET /1.1/application/rate_limit_status.json",
        "GET /1.1/account/verify_credentials.json",
        "POST /oauth2/invalidate_token",
        "POST /2/oauth2/token",
        "GET /2/users/me",
    ] {
        assert!(
            requests.iter().any(|r| r == endpoint),
            "{endpoint} not called: {requests:?}"
        );
    }
    let asked = asked.lock().unwrap().clone();
    assert!(
        !asked.is_empty() && asked.iter().all(|t| t == "api.twitter.com:443"),
        "the clients asked the proxy for {asked:?}"
    );
}
