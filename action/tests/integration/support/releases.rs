//! A local stand-in for GitHub's release downloads
//! (`/{owner}/{repo}/releases/download/{tag}/{asset}`): serves the files it
//! is given, 404 for anything else, and records each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;

pub type Requests = Arc<Mutex<Vec<String>>>;
type Files = Arc<HashMap<String, Vec<u8>>>;

/// Serves `files` (path → bytes); the server URL and the requests made.
pub async fn start(files: HashMap<String, Vec<u8>>) -> (String, Requests) {
    let requests: Requests = Arc::default();
    let state = (Arc::new(files), requests.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(serve).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}"), requests)
}

async fn serve(
    State((files, requests)): State<(Files, Requests)>,
    uri: Uri,
) -> Result<Vec<u8>, StatusCode> {
    requests.lock().unwrap().push(uri.path().to_string());
    files.get(uri.path()).cloned().ok_or(StatusCode::NOT_FOUND)
}
