//! The operator's requests to the apiserver, fair between tenants: at most
//! `n` in flight, and the rest wait with namespaces taking turns (the same
//! round robin as the reconcile slots, `workers.rs`).
//!
//! Why a second bound: when one namespace changes thousands of resources
//! at once, the contended resource is the apiserver, not a reconcile slot.
//! Measured at 5,000 (docs/benchmarks.md, "Fairness, third pass"): a quiet
//! namespace's reconcile queued each of its requests behind the flood's 32
//! reconciles' at the apiserver, and its three environments took 1–1.7 s;
//! with the requests taking turns, 0.2–0.5 s: its next request goes out as
//! soon as one of `n` returns. One namespace holds at most all but an
//! eighth of the `n` (`workers::per_namespace_cap`).
//!
//! Watches stay open and never take a turn; nor do leases (leader election
//! must not wait behind tenants) or cluster-scoped requests (namespaces,
//! reviews). A turn is held until the response's headers arrive.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use http::{Request, Uri};
use tower::{Layer, Service, ServiceExt};

use crate::workers::Workers;

/// Pure: the namespace a request to `uri` waits its turn as, or `None`
/// when it goes out at once (see the module's doc).
pub fn turn_of(uri: &Uri) -> Option<&str> {
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
    let _version = segments.next()?;
    if watch || group == "coordination.k8s.io" || segments.next()? != "namespaces" {
        return None;
    }
    segments.next().filter(|namespace| !namespace.is_empty())
}

/// Wraps the kube client's service so its requests take turns.
#[derive(Clone)]
pub struct TakeTurnsLayer {
    turns: Arc<Workers>,
}

impl TakeTurnsLayer {
    pub fn new(in_flight: usize) -> Self {
        TakeTurnsLayer {
            turns: Arc::new(Workers::new(in_flight)),
        }
    }
}

impl<S> Layer<S> for TakeTurnsLayer {
    type Service = TakeTurns<S>;

    fn layer(&self, inner: S) -> TakeTurns<S> {
        TakeTurns {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            turns: self.turns.clone(),
        }
    }
}

/// The service [`TakeTurnsLayer`] makes. kube's service stack cannot be
/// cloned, so the wrapped service sits behind a lock taken only to send a
/// request, never while its answer is awaited.
pub struct TakeTurns<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    turns: Arc<Workers>,
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
        let namespace = turn_of(request.uri()).map(str::to_string);
        let (inner, turns) = (self.inner.clone(), self.turns.clone());
        Box::pin(async move {
            let _turn = match &namespace {
                Some(namespace) => Some(turns.turn(namespace).await),
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

    #[test]
    fn which_requests_take_turns_and_as_which_namespace() {
        let cases: [(&str, Option<&str>); 12] = [
            ("/api/v1/namespaces/team-a/secrets/s", Some("team-a")),
            (
                "/api/v1/namespaces/team-a/secrets?labelSelector=x",
                Some("team-a"),
            ),
            (
                "/apis/rbac.authorization.k8s.io/v1/namespaces/b/roles/r",
                Some("b"),
            ),
            (
                "/apis/keyguard.dev/v1alpha1/namespaces/c/twittercredentials/t/status",
                Some("c"),
            ),
            ("/api/v1/namespaces/team-a", Some("team-a")),
            (
                "/api/v1/namespaces/team-a/secrets?watch=true&resourceVersion=1",
                None,
            ),
            (
                "/api/v1/namespaces/team-a/secrets?allowWatchBookmarks=true&watch=1",
                None,
            ),
            (
                "/apis/coordination.k8s.io/v1/namespaces/kg/leases/keyguard",
                None,
            ),
            ("/api/v1/namespaces", None),
            ("/apis/authentication.k8s.io/v1/tokenreviews", None),
            ("/api/v1/secrets?watch=true", None),
            ("/version", None),
        ];
        for (uri, want) in cases {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(turn_of(&uri), want, "{uri}");
        }
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

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn at_most_n_in_flight_namespaces_take_turns_and_watches_never_wait() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let inner = gated(started.clone(), in_flight.clone(), gate.clone());
        // Three in flight; one namespace may hold two of them.
        let mut service = TakeTurnsLayer::new(3).layer(inner);
        let mut answers = Vec::new();
        let requests = [
            ("/api/v1/namespaces/flood/secrets/a", "flood-0"),
            ("/api/v1/namespaces/flood/secrets/b", "flood-1"),
            ("/api/v1/namespaces/flood/secrets/c", "flood-2"),
            ("/api/v1/namespaces/flood/secrets/d", "flood-3"),
            ("/api/v1/namespaces/quiet/secrets/e", "quiet"),
            ("/api/v1/namespaces/quiet/secrets?watch=true", "watch"),
        ];
        for (uri, name) in requests {
            let request = Request::get(uri).body(name.to_string()).unwrap();
            answers.push(tokio::spawn(service.call(request)));
            settle().await;
        }
        assert_eq!(
            in_flight.load(SeqCst),
            4,
            "three with a turn, and the watch"
        );
        for _ in 0..requests.len() {
            gate.add_permits(1);
            settle().await;
            assert!(
                in_flight.load(SeqCst) <= 4,
                "never more than three and the watch"
            );
        }
        for answer in answers {
            answer.await.unwrap().unwrap();
        }
        assert_eq!(
            *started.lock().unwrap(),
            ["flood-0", "flood-1", "quiet", "watch", "flood-2", "flood-3"],
            "the quiet namespace finds the turn kept for others, not behind the flood"
        );
    }
}
