//! A local stand-in for the GitHub REST API's issue-comment endpoints, as
//! octocrab calls them, and for an organisation's repository listing (paged
//! as GitHub pages it, with rate limits it can be told to apply); it keeps
//! comments and repositories in memory and records each call.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct Recorded {
    pub calls: Vec<String>,
    pub comments: Vec<(u64, u64, String)>, // (id, issue, body)
    pub next_id: u64,
    pub auth_headers: Vec<String>,
    /// Refuse every write with 403, as GitHub does for a fork's read-only
    /// token.
    pub read_only: bool,
    /// Answer every write with a 500 and a body that is no comment, as a
    /// GitHub outage does.
    pub broken: bool,
    /// The organisation whose repositories `/orgs/{org}/repos` lists.
    pub organisation: String,
    /// Its repositories, as GitHub's repository objects.
    pub repositories: Vec<Value>,
    /// Pages answered once with a secondary rate limit (403, retry-after).
    pub rate_limited_pages: Vec<(u32, u64)>,
}

pub type Shared = Arc<Mutex<Recorded>>;

fn comment_json(port: u16, id: u64, body: &str) -> Value {
    let user = json!({
        "login": "github-actions[bot]", "id": 41898282, "node_id": "MDM6Qm90NDE4OTgyODI=",
        "avatar_url": "http://localhost/a.png", "gravatar_id": "", "url": "http://localhost/u",
        "html_url": "http://localhost/u", "followers_url": "http://localhost/u", "following_url": "http://localhost/u",
        "gists_url": "http://localhost/u", "starred_url": "http://localhost/u", "subscriptions_url": "http://localhost/u",
        "organizations_url": "http://localhost/u", "repos_url": "http://localhost/u", "events_url": "http://localhost/u",
        "received_events_url": "http://localhost/u", "type": "Bot", "site_admin": false
    });
    json!({
        "id": id, "node_id": format!("IC_{id}"),
        "url": format!("http://127.0.0.1:{port}/repos/acme/bot/issues/comments/{id}"),
        "html_url": format!("http://127.0.0.1:{port}/acme/bot/pull/7#issuecomment-{id}"),
        "issue_url": format!("http://127.0.0.1:{port}/repos/acme/bot/issues/7"),
        "body": body, "user": user, "author_association": "NONE",
        "created_at": "2026-11-30T00:00:00Z", "updated_at": "2026-11-30T00:00:00Z"
    })
}

pub async fn start() -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(Recorded {
        next_id: 1000,
        ..Default::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list).post(create),
        )
        .route("/orgs/{org}/repos", get(list_repositories))
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            // GitHub takes POST as well as PATCH here, and octocrab uses POST.
            patch(update).post(update).delete(delete),
        )
        .fallback(|method: Method, uri: Uri| async move {
            (
                StatusCode::NOT_FOUND,
                format!("stand-in has no {method} {uri}"),
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), record))
        .with_state((state.clone(), port));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}"), state)
}

async fn record(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    {
        let mut s = state.lock().unwrap();
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        s.calls
            .push(format!("{} {}{query}", req.method(), req.uri().path()));
        if let Some(h) = req.headers().get("authorization") {
            s.auth_headers
                .push(h.to_str().unwrap_or_default().to_string());
        }
        if s.broken && req.method() != Method::GET {
            use axum::response::IntoResponse;
            return (StatusCode::INTERNAL_SERVER_ERROR, "<html>unicorn</html>").into_response();
        }
        if s.read_only && req.method() != Method::GET {
            use axum::response::IntoResponse;
            return (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
                    "status": "403"
                })),
            )
                .into_response();
        }
    }
    next.run(req).await
}

type St = State<(Shared, u16)>;

async fn list(
    State((s, port)): St,
    Path((_, _, number)): Path<(String, String, u64)>,
) -> Json<Value> {
    let s = s.lock().unwrap();
    Json(Value::Array(
        s.comments
            .iter()
            .filter(|(_, issue, _)| *issue == number)
            .map(|(id, _, body)| comment_json(port, *id, body))
            .collect(),
    ))
}

async fn create(
    State((s, port)): St,
    Path((_, _, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut s = s.lock().unwrap();
    s.next_id += 1;
    let id = s.next_id;
    let text = body["body"].as_str().unwrap_or_default().to_string();
    s.comments.push((id, number, text.clone()));
    (StatusCode::CREATED, Json(comment_json(port, id, &text)))
}

async fn update(
    State((s, port)): St,
    Path((_, _, id)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let mut s = s.lock().unwrap();
    let text = body["body"].as_str().unwrap_or_default().to_string();
    let c = s
        .comments
        .iter_mut()
        .find(|c| c.0 == id)
        .ok_or(StatusCode::NOT_FOUND)?;
    c.2 = text.clone();
    Ok(Json(comment_json(port, id, &text)))
}

async fn delete(State((s, _)): St, Path((_, _, id)): Path<(String, String, u64)>) -> StatusCode {
    let mut s = s.lock().unwrap();
    let before = s.comments.len();
    s.comments.retain(|c| c.0 != id);
    if s.comments.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// A repository object as GitHub lists it (the fields a client reads).
pub fn repository_json(full_name: &str, clone_url: &str, pushed_at: &str) -> Value {
    json!({
        "id": 1, "node_id": "R_1", "name": full_name.split('/').nth(1).unwrap_or_default(),
        "full_name": full_name, "private": true, "archived": false, "disabled": false,
        "fork": false, "pushed_at": pushed_at, "clone_url": clone_url,
        "html_url": format!("https://github.example/{full_name}"),
        "default_branch": "main", "visibility": "private"
    })
}

#[derive(serde::Deserialize)]
struct Page {
    page: Option<u32>,
    per_page: Option<usize>,
}

async fn list_repositories(
    State((s, _)): St,
    Path(org): Path<String>,
    axum::extract::Query(q): axum::extract::Query<Page>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut s = s.lock().unwrap();
    if !org.eq_ignore_ascii_case(&s.organisation) {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
    }
    let page = q.page.unwrap_or(1).max(1);
    if let Some(i) = s.rate_limited_pages.iter().position(|(p, _)| *p == page) {
        let (_, retry_after) = s.rate_limited_pages.remove(i);
        return (
            StatusCode::FORBIDDEN,
            [("retry-after", retry_after.to_string())],
            Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        )
            .into_response();
    }
    let per_page = q.per_page.unwrap_or(30).min(100);
    let items: Vec<Value> = s
        .repositories
        .iter()
        .skip((page as usize - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    (
        [("x-ratelimit-remaining", "4000")],
        Json(Value::Array(items)),
    )
        .into_response()
}
