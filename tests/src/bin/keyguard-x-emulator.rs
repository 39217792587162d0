//! Runs the X API emulator for the demo and for people trying the operator
//! without real X credentials.
//!
//! keyguard-x-emulator --listen 127.0.0.1:8089 --namespace team-news \
//!     --source-secret news-bot-prod-keys --source-secret news-bot-staging-keys \
//!     --write-secrets sources.yaml
//!
//! Each `--source-secret` gets a fresh app; the file receives Secret
//! manifests holding its credentials, ready for `kubectl apply`.
//! `--tier free` puts every app on X's Free access tier, which lacks the
//! read endpoints (X answers 403 with error 453 to valid credentials
//! there); `basic` (the default) and `pro` have them.

use std::fmt::Write;

use anyhow::{bail, Context};
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut namespace = "default".to_string();
    let mut secrets = Vec::new();
    let mut out = None;
    let mut free_tier = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--namespace" => namespace = value()?,
            "--source-secret" => secrets.push(value()?),
            "--write-secrets" => out = Some(value()?),
            "--tier" => {
                free_tier = match value()?.as_str() {
                    "free" => true,
                    "basic" | "pro" => false,
                    other => bail!("--tier {other}: expected free, basic or pro"),
                }
            }
            other => bail!("unknown flag {other}; see the comment at the top of this file"),
        }
    }
    let x = XApiEmulator::start_on(&listen).await;
    let mut manifests = String::new();
    for name in &secrets {
        let app = x.create_app(AccessLevel::Read);
        if free_tier {
            x.limit_access_tier(&app.api_key);
        }
        let _ = write!(
            manifests,
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\nstringData:\n  apiKey: {}\n  apiKeySecret: {}\n  accessToken: {}\n  accessTokenSecret: {}\n  clientId: {}\n  clientSecret: {}\n  refreshToken: {}\n",
            app.api_key, app.api_key_secret, app.access_token, app.access_token_secret, app.client_id, app.client_secret, app.refresh_token
        );
    }
    if let Some(path) = out {
        std::fs::write(&path, manifests).with_context(|| format!("writing {path}"))?;
    }
    // The address goes to stdout for scripts; everything else to stderr.
    println!("{}", x.base_url());
    eprintln!(
        "X API emulator listening on {}; Ctrl-C stops it",
        x.base_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
