//! A kube client that answers some writes with 409 itself, as the
//! apiserver does when another writer got there first: "the object has
//! been modified" for updates, patches and deletes, "already exists" for
//! creates. Every write path of the operator meets one, so a test can show
//! that each converges. It also records every read (GET) it passes on, so
//! a test can show which reads a cache saved, and every request the
//! apiserver refused with 403, so a test can tell the moment a missing
//! RBAC rule stopped the operator.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use kube::client::{Body, ClientBuilder, DynBody};
use kube::{Client, Config};
use tower::{BoxError, Service};

/// Which writes get a 409, and which did.
#[derive(Clone, Debug)]
pub struct Conflicts {
    inner: Arc<Mutex<Ledger>>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// Of each key's writes, every `every`-th (the first included) gets a 409.
    every: u32,
    enabled: bool,
    writes: BTreeMap<String, u32>,
    injected: BTreeSet<String>,
    /// Paths (and queries) of the GETs passed on, in order; lists and
    /// watches have a query, a read of one object has none.
    reads: Vec<String>,
    /// When the apiserver answered 403, and the request's kind (see
    /// [`kind_of`]).
    denied: Vec<(std::time::Instant, String)>,
}

impl Conflicts {
    /// The first write of each method and path, and every `every`-th after
    /// it, is answered 409 (`every` = 2: the 1st, 3rd, 5th …).
    pub fn every(every: u32) -> Self {
        Conflicts {
            inner: Arc::new(Mutex::new(Ledger {
                every: every.max(1),
                enabled: true,
                ..Default::default()
            })),
        }
    }

    /// No conflicts: a client that only records its reads.
    pub fn none() -> Self {
        let c = Conflicts::every(1);
        c.set_enabled(false);
        c
    }

    /// The paths this client has read (GET) since the last call, e.g.
    /// `/api/v1/namespaces/team/secrets/bot-keys`.
    pub fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().reads)
    }

    /// A client for `config` whose writes pass through these conflicts.
    pub fn client(&self, config: Config) -> kube::Result<Client> {
        let ledger = self.inner.clone();
        let layer = tower::layer::layer_fn(move |inner| Inject {
            inner,
            ledger: ledger.clone(),
        });
        Ok(ClientBuilder::try_from(config)?.with_layer(&layer).build())
    }

    /// The kinds (`secrets`, `twittercredentials/status` …) of the requests
    /// the apiserver refused with 403 Forbidden.
    pub fn denied(&self) -> BTreeSet<String> {
        self.lock().denied.iter().map(|(_, k)| k.clone()).collect()
    }

    /// When the apiserver first refused a request of one of `kinds` (at or
    /// after `since`, when given).
    pub fn first_denied(
        &self,
        kinds: &[&str],
        since: Option<std::time::Instant>,
    ) -> Option<std::time::Instant> {
        self.lock()
            .denied
            .iter()
            .filter(|(at, kind)| kinds.contains(&kind.as_str()) && since.is_none_or(|s| *at >= s))
            .map(|(at, _)| *at)
            .next()
    }

    /// Stops (or resumes) answering with conflicts.
    pub fn set_enabled(&self, enabled: bool) {
        self.lock().enabled = enabled;
    }

    /// The kinds of write that got a 409, as `METHOD resource[/subresource]`,
    /// e.g. `PUT secrets`, `PATCH twittercredentials/status`.
    pub fn injected(&self) -> BTreeSet<String> {
        self.lock().injected.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Ledger {
    /// Whether this write gets a 409; counts it either way.
    fn conflicts(&mut self, method: &Method, path: &str) -> bool {
        let writes = self.writes.entry(format!("{method} {path}")).or_default();
        let n = *writes;
        *writes += 1;
        if !self.enabled || !n.is_multiple_of(self.every) {
            return false;
        }
        self.injected.insert(format!("{method} {}", kind_of(path)));
        true
    }
}

/// `secrets`, `roles`, `twittercredentials/status` … from an API path.
pub fn kind_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/<group>/<version>/...
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..),
        _ => parts.get(3..),
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    match rest {
        [kind] | [kind, _] => kind.to_string(),
        [kind, _, sub, ..] => format!("{kind}/{sub}"),
        [] => String::new(),
    }
}

fn is_write(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

/// The answer the apiserver gives a write that lost a race.
fn conflict(method: &Method, path: &str) -> Response<Full<Bytes>> {
    let kind = kind_of(path);
    let (reason, message) = if *method == Method::POST {
        ("AlreadyExists", format!("{kind} already exists (injected)"))
    } else {
        (
            "Conflict",
            format!("Operation cannot be fulfilled on {kind}: the object has been modified; please apply your changes to the latest version and try again (injected)"),
        )
    };
    let status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": 409,
    });
    Response::builder()
        .status(StatusCode::CONFLICT)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(status.to_string())))
        .expect("a valid response")
}

/// The middleware [`Conflicts::client`] puts in the client's stack.
pub struct Inject<S> {
    inner: S,
    ledger: Arc<Mutex<Ledger>>,
}

type Answer = Response<Either<Box<DynBody>, Full<Bytes>>>;

impl<S> Service<Request<Body>> for Inject<S>
where
    S: Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        if method == Method::GET {
            let read = req.uri().path_and_query().map(|p| p.to_string());
            let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            ledger.reads.extend(read);
        }
        let injected = is_write(&method)
            && self
                .ledger
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .conflicts(&method, &path);
        if injected {
            let answer = conflict(&method, &path).map(Either::Right);
            return Box::pin(std::future::ready(Ok(answer)));
        }
        let call = self.inner.call(req);
        let ledger = self.ledger.clone();
        Box::pin(async move {
            let answer = call.await?;
            if answer.status() == StatusCode::FORBIDDEN {
                let mut ledger = ledger.lock().unwrap_or_else(|p| p.into_inner());
                ledger
                    .denied
                    .push((std::time::Instant::now(), kind_of(&path)));
            }
            Ok(answer.map(Either::Left))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_api_paths() {
        let cases = [
            ("/api/v1/namespaces/team/secrets", "secrets"),
            ("/api/v1/namespaces/team/secrets/out", "secrets"),
            (
                "/apis/rbac.authorization.k8s.io/v1/namespaces/t/roles/r",
                "roles",
            ),
            (
                "/apis/keyguard.dev/v1alpha1/namespaces/t/twittercredentials/bot/status",
                "twittercredentials/status",
            ),
            ("/api/v1/namespaces/team", "namespaces"),
            ("/api/v1/namespaces", "namespaces"),
        ];
        for (path, want) in cases {
            assert_eq!(kind_of(path), want, "{path}");
        }
    }

    #[test]
    fn the_first_and_every_nth_write_of_a_path_conflict() {
        let mut ledger = Ledger {
            every: 2,
            enabled: true,
            ..Default::default()
        };
        let put = |l: &mut Ledger, p| l.conflicts(&Method::PUT, p);
        let a = "/api/v1/namespaces/t/secrets/a";
        let b = "/api/v1/namespaces/t/secrets/b";
        assert_eq!(
            [
                put(&mut ledger, a),
                put(&mut ledger, a),
                put(&mut ledger, b),
                put(&mut ledger, a)
            ],
            [true, false, true, true]
        );
        ledger.enabled = false;
        assert!(!put(&mut ledger, b), "disabled: passes (and counts)");
        assert!(!put(&mut ledger, b), "4th write of b");
        assert_eq!(ledger.injected, BTreeSet::from(["PUT secrets".to_string()]));
    }
}
