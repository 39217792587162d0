//! The client against an X API that is not X, or not only X: a redirect to
//! another host must not carry the credentials there, and an endless answer
//! must not be read into memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyguard_credentials::SecretValue;
use keyguard_xapi::{XApi, XApiClient, MAX_ANSWER_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on a loopback port answering every request with `answer`
/// (headers, then `body_bytes` zero bytes in 64 KiB writes); counts the
/// requests it got and the body bytes it managed to write.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
}

async fn serve(answer: String, body_bytes: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (requests, written) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, w) = (requests.clone(), written.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (r, w, answer) = (r.clone(), w.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|x| x == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                r.fetch_add(1, Ordering::SeqCst);
                if conn.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let zeros = vec![b'0'; 64 << 10];
                let mut left = body_bytes;
                while left > 0 {
                    let n = left.min(zeros.len());
                    if conn.write_all(&zeros[..n]).await.is_err() {
                        return;
                    }
                    w.fetch_add(n, Ordering::SeqCst);
                    left -= n;
                }
            });
        }
    });
    Server {
        url,
        requests,
        written,
    }
}

fn client(base: &str) -> XApiClient {
    XApiClient::new(base, Duration::from_secs(20))
        .unwrap()
        .with_backoff(keyguard_xapi::retry::Backoff::none())
}

fn secret(s: &str) -> SecretValue {
    SecretValue::new(s.as_bytes().to_vec())
}

#[tokio::test]
async fn a_redirect_never_carries_credentials_to_another_host() {
    let elsewhere = serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".into(), 0).await;
    for status in [301, 302, 303, 307, 308] {
        let answer = format!(
            "HTTP/1.1 {status} Moved\r\nLocation: {}/oauth2/token\r\nContent-Length: 0\r\n\r\n",
            elsewhere.url
        );
        let x = serve(answer, 0).await;
        let c = client(&x.url);
        let minted = c.mint_bearer(&secret("key"), &secret("key-secret")).await;
        let refreshed = c
            .refresh_user_token(
                &secret("client"),
                Some(&secret("client-secret")),
                &secret("refresh-token"),
            )
            .await;
        let owner = keyguard_credentials::OAuth1Keys {
            consumer_key: "key",
            consumer_secret: "key-secret",
            token: "1-owner-token",
            token_secret: "owner-token-secret",
        };
        let invalidated = c.invalidate_bearer(&owner, &secret("AAAA-bearer")).await;
        for (what, failed) in [
            ("mint", minted.is_err()),
            ("refresh", refreshed.is_err()),
            ("invalidate", invalidated.is_err()),
        ] {
            assert!(failed, "{what} after HTTP {status} must fail");
        }
        let message = c
            .mint_bearer(&secret("key"), &secret("key-secret"))
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("redirect"), "HTTP {status}: {message}");
        assert!(
            x.requests.load(Ordering::SeqCst) >= 4,
            "HTTP {status}: the X stand-in was asked"
        );
    }
    assert_eq!(
        elsewhere.requests.load(Ordering::SeqCst),
        0,
        "a redirect was followed: the credentials reached another host"
    );
}

#[tokio::test]
async fn an_answer_larger_than_the_bound_is_not_read() {
    let huge = 150 << 20;
    let declared = serve(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {huge}\r\n\r\n"
        ),
        huge,
    )
    .await;
    let chunked = serve(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n".into(),
        huge,
    )
    .await;
    for server in [&declared, &chunked] {
        let error = client(&server.url)
            .mint_bearer(&secret("key"), &secret("key-secret"))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("larger than"), "{error}");
        // Socket buffers hold a few MiB; reading on would have taken all 150.
        let written = server.written.load(Ordering::SeqCst);
        assert!(
            written < 32 << 20,
            "{written} bytes were written: the client kept reading past {MAX_ANSWER_BYTES}"
        );
    }
}
