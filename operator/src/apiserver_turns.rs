//! The operator's requests to the apiserver, fair between tenants: at most
//! `n` in flight, and the rest wait with tenants taking turns (the same
//! round robin and per-namespace cap as the reconcile slots, `workers.rs`).
//!
//! Why a second bound: when one namespace changes thousands of resources
//! at once, the contended resource is the apiserver, not a reconcile slot.
//! Measured at 5,000 (docs/benchmarks.md, "Fairness, third pass"): a quiet
//! namespace's reconcile queued each of its requests behind the flood's 32
//! reconciles' at the apiserver, and its three environments took 1–1.7 s;
//! with the requests taking turns, 0.2–0.5 s: its next request goes out as
//! soon as one of `n` returns.
//!
//! Whose turn: a request made by a reconcile is charged to the namespace
//! of the resource reconciled ([`as_tenant`]), wherever it goes (a target
//! namespace, a SubjectAccessReview), so a tenant cannot spend another
//! namespace's turns by pointing its resources there. Other requests (the
//! orphan sweeper, the caches' lists) are charged to the namespace in
//! their path. Watches stay open and never take a turn; nor do leases
//! (leader election must not wait behind tenants) or cluster-scoped
//! requests made outside a reconcile. A turn is held until the response's
//! headers arrive, through kube's retries of a refused request (429): while
//! the apiserver sheds load the bound stays honest.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use http::{Request, Uri};
use tower::{Layer, Service, ServiceExt};

use crate::metrics::Metrics;
use crate::workers::Workers;

tokio::task_local! {
    /// The namespace whose reconcile is running in this task.
    static TENANT: String;
}

/// Runs `work` (a reconcile) with its apiserver requests charged to
/// `namespace`'s turns.
pub async fn as_tenant<F: std::future::Future>(namespace: &str, work: F) -> F::Output {
    TENANT.scope(namespace.to_string(), work).await
}

/// Pure: whose turn a request to `uri` waits for, made on behalf of
/// `tenant` (a reconcile's namespace) or of nobody; `None`: it goes out at
/// once (see the module's doc).
pub fn turn_of(uri: &Uri, tenant: Option<&str>) -> Option<String> {
    let watch = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    });
    let mut segments = uri.path().trim_start_matches('/').split('/');
    let group = match segments.next()? {
        "api" => "",
        "apis" => segments.next()?,
        _ => return None,
    };
    if watch || group == "coordination.k8s.io" {
        return None;
    }
    let _version = segments.next()?;
    let in_path = match (segments.next(), segments.next()) {
        (Some("namespaces"), Some(namespace)) if !namespace.is_empty() => Some(namespace),
        _ => None,
    };
    tenant.or(in_path).map(str::to_string)
}

/// Wraps the kube client's service so its requests take turns.
#[derive(Clone)]
pub struct TakeTurnsLayer {
    turns: Arc<Workers>,
    metrics: Metrics,
}

impl TakeTurnsLayer {
    pub fn new(in_flight: usize, metrics: Metrics) -> Self {
        TakeTurnsLayer {
            turns: Arc::new(Workers::new(in_flight)),
            metrics,
        }
    }
}

impl<S> Layer<S> for TakeTurnsLayer {
    type Service = TakeTurns<S>;

    fn layer(&self, inner: S) -> TakeTurns<S> {
        TakeTurns {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            layer: self.clone(),
        }
    }
}

/// The service [`TakeTurnsLayer`] makes. kube's service stack cannot be
/// cloned, so the wrapped service sits behind a lock taken only to send a
/// request, never while its answer is awaited.
pub struct TakeTurns<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    layer: TakeTurnsLayer,
}

/// Counts a request waiting for its turn, also when the wait is cancelled.
struct Waiting(Metrics);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.request_sent();
    }
}

impl<S, B> Service<Request<B>> for TakeTurns<S>
where
    S: Service<Request<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    S::Response: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    /// Always ready: the wrapped service is readied when the turn comes.
    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (inner, layer) = (self.inner.clone(), self.layer.clone());
        // The tenant is read when the answer is awaited: kube's buffer
        // calls this in its own task, but the caller's task polls the future.
        Box::pin(async move {
            let tenant = TENANT.try_with(|t| t.clone()).ok();
            let _turn = match turn_of(request.uri(), tenant.as_deref()) {
                Some(key) => {
                    layer.metrics.request_waiting();
                    let _waiting = Waiting(layer.metrics.clone());
                    Some(layer.turns.turn(&key).await)
                }
                None => None,
            };
            let answer = inner.lock().await.ready().await?.call(request);
            answer.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts `turn_of` for each (uri, reconciling namespace, turn).
    fn assert_turns(cases: &[(&str, Option<&str>, Option<&str>)]) {
        for (uri, tenant, want) in cases {
            let parsed: Uri = uri.parse().unwrap();
            assert_eq!(
                turn_of(&parsed, *tenant).as_deref(),
                *want,
                "{uri} for {tenant:?}"
            );
        }
    }

    #[test]
    fn outside_a_reconcile_the_namespace_in_the_path_takes_the_turn() {
        assert_turns(&[
            ("/api/v1/namespaces/team-a/secrets/s", None, Some("team-a")),
            (
                "/api/v1/namespaces/team-a/secrets?labelSelector=x",
                None,
                Some("team-a"),
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/namespaces/b/roles/r",
                None,
                Some("b"),
            ),
            (
                "/apis/keyguard.dev/v1alpha1/namespaces/c/twittercredentials/t/status",
                None,
                Some("c"),
            ),
            ("/api/v1/namespaces/team-a", None, Some("team-a")),
        ]);
    }

    #[test]
    fn watches_leases_and_cluster_scoped_requests_never_wait() {
        assert_turns(&[
            (
                "/api/v1/namespaces/team-a/secrets?watch=true&resourceVersion=1",
                None,
                None,
            ),
            (
                "/api/v1/namespaces/team-a/secrets?allowWatchBookmarks=true&watch=1",
                None,
                None,
            ),
            (
                "/apis/coordination.k8s.io/v1/namespaces/kg/leases/keyguard",
                None,
                None,
            ),
            ("/api/v1/namespaces", None, None),
            ("/apis/authentication.k8s.io/v1/tokenreviews", None, None),
            ("/api/v1/secrets?watch=true", None, None),
            ("/version", None, None),
        ]);
    }

    #[test]
    fn a_reconciles_requests_are_its_own_namespaces_wherever_they_go() {
        assert_turns(&[
            (
                "/api/v1/namespaces/victim/secrets/s",
                Some("flood"),
                Some("flood"),
            ),
            (
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                Some("flood"),
                Some("flood"),
            ),
            (
                "/api/v1/namespaces/victim/secrets?watch=true",
                Some("flood"),
                None,
            ),
            (
                "/apis/coordination.k8s.io/v1/namespaces/kg/leases/l",
                Some("flood"),
                None,
            ),
        ]);
    }

    /// A service that notes the order requests reach it and how many are
    /// in flight, and answers each when `gate` gives a permit.
    fn gated(
        started: Arc<std::sync::Mutex<Vec<String>>>,
        in_flight: Arc<std::sync::atomic::AtomicUsize>,
        gate: Arc<tokio::sync::Semaphore>,
    ) -> tower::util::BoxService<Request<String>, (), std::convert::Infallible> {
        use std::sync::atomic::Ordering::SeqCst;
        tower::util::BoxService::new(tower::service_fn(move |request: Request<String>| {
            let (in_flight, gate) = (in_flight.clone(), gate.clone());
            started.lock().unwrap().push(request.into_body());
            in_flight.fetch_add(1, SeqCst);
            async move {
                gate.acquire().await.unwrap().forget();
                in_flight.fetch_sub(1, SeqCst);
                Ok(())
            }
        }))
    }

    /// Lets every spawned task run as far as it can (one thread: the
    /// order is the spawn order).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn waiting(metrics: &Metrics) -> String {
        let text = metrics.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("keyguard_apiserver_requests_waiting "));
        line.unwrap_or_else(|| panic!("gauge missing from:\n{text}"))
            .to_string()
    }

    /// Sends a GET of a Secret in `namespace` (a watch of them when `name`
    /// is "watch") as `tenant`'s reconcile would, on its own task.
    fn send<S>(
        service: &mut S,
        namespace: &str,
        tenant: Option<&'static str>,
        name: &str,
    ) -> tokio::task::JoinHandle<Result<(), std::convert::Infallible>>
    where
        S: Service<Request<String>, Response = (), Error = std::convert::Infallible>,
        S::Future: Send + 'static,
    {
        let uri = match name {
            "watch" => format!("/api/v1/namespaces/{namespace}/secrets?watch=true"),
            _ => format!("/api/v1/namespaces/{namespace}/secrets/{name}"),
        };
        let answer = service.call(Request::get(uri).body(name.to_string()).unwrap());
        tokio::spawn(async move {
            match tenant {
                Some(tenant) => as_tenant(tenant, answer).await,
                None => answer.await,
            }
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn at_most_n_in_flight_tenants_take_turns_and_watches_never_wait() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let inner = gated(started.clone(), in_flight.clone(), gate.clone());
        let metrics = Metrics::default();
        // Four in flight; one namespace may hold three of them.
        let mut service = TakeTurnsLayer::new(4, metrics.clone()).layer(inner);
        // (secret's namespace, reconciling namespace, name): the flood's
        // fourth request goes to the quiet namespace but is the flood's own.
        let requests = [
            ("flood", Some("flood"), "flood-0"),
            ("flood", Some("flood"), "flood-1"),
            ("flood", Some("flood"), "flood-2"),
            ("quiet", Some("flood"), "flood-3"),
            ("flood", Some("flood"), "flood-4"),
            ("quiet", None, "quiet"),
            ("quiet", None, "watch"),
        ];
        let mut answers = Vec::new();
        for (namespace, tenant, name) in requests {
            answers.push(send(&mut service, namespace, tenant, name));
            settle().await;
        }
        assert_eq!(in_flight.load(SeqCst), 5, "four with a turn, and the watch");
        assert!(waiting(&metrics).ends_with(" 2"), "{}", waiting(&metrics));
        for _ in 0..requests.len() {
            gate.add_permits(1);
            settle().await;
            assert!(
                in_flight.load(SeqCst) <= 5,
                "never more than four and the watch"
            );
        }
        for answer in answers {
            let answered = tokio::time::timeout(std::time::Duration::from_secs(5), answer).await;
            answered.expect("every request answered").unwrap().unwrap();
        }
        assert_eq!(
            *started.lock().unwrap(),
            ["flood-0", "flood-1", "flood-2", "quiet", "watch", "flood-3", "flood-4"],
            "the quiet namespace finds the turn kept for others, and the flood's request into it is the flood's"
        );
        assert!(waiting(&metrics).ends_with(" 0"), "{}", waiting(&metrics));
    }
}
