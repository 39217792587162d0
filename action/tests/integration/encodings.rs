//! Leaks as real files hold them: UTF-16 text, HAR and Postman exports,
//! encoded blobs in config, HTTP traces; each found where it is written
//! and shown redacted.

use base64::Engine;

use crate::support::*;

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        out.extend(u.to_le_bytes());
    }
    out
}

fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

#[test]
fn leaks_in_the_encodings_real_files_use_are_found() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    let env = format!("# bot\r\nTWITTER_ACCESS_TOKEN_SECRET={ACCESS_SECRET}\r\n");
    write("windows/bot.env", &utf16le_with_bom(&env));
    write("windows/bot-be.env", &utf16be(&env));
    write(
        "traces/session.har",
        format!(
            r#"{{"log": {{"entries": [{{"request": {{"method": "POST", "url": "https://api.x.com/oauth2/token",
  "headers": [{{"name": "Authorization", "value": "Basic {}"}}]}}}}]}}}}"#,
            b64(&format!("{API_KEY}:{API_SECRET}"))
        )
        .as_bytes(),
    );
    write(
        "postman/x.postman_collection.json",
        format!(r#"{{"variable": [{{"key": "twitter_consumer_secret", "value": "{API_SECRET}", "type": "string"}}]}}"#)
            .as_bytes(),
    );
    write(
        "deploy/configmap.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  dotenv: {}\n",
            b64(&format!("TWITTER_BEARER_TOKEN={BEARER}\n"))
        )
        .as_bytes(),
    );
    write(
        "logs/proxy.log",
        format!("GET /cb?token={} 200\n", BEARER.replace('%', "%25")).as_bytes(),
    );
    let out = keyguard(&["scan", "--format", "json", "."], dir.path());
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.assert_redacted();
    let report = json(&out);
    let mut found: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{} {}",
                f["path"].as_str().unwrap(),
                f["line"],
                f["credential"].as_str().unwrap()
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            "deploy/configmap.yaml:4 bearerToken",
            "logs/proxy.log:1 bearerToken",
            "postman/x.postman_collection.json:1 apiKeySecret",
            "traces/session.har:2 apiKey",
            "traces/session.har:2 apiKeySecret",
            "windows/bot-be.env:2 accessTokenSecret",
            "windows/bot.env:2 accessTokenSecret",
        ],
        "{report}"
    );
    assert_eq!(report["stats"]["binarySkipped"], 0);
}
