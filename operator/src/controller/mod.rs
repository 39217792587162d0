//! The controller: the watches that trigger reconciles (`watches.rs`,
//! `triggers.rs`), a rebuild of every watch after a failure, and the error
//! policy. What one reconcile does is `reconcile/`.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::runtime::controller::Action;
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, ResourceExt};
use tracing::warn;

use crate::context::Context;
use crate::reconcile::reconcile_at_turn;
use crate::resource::TwitterCredential;
use crate::stored_credential::StoredCredential;
use crate::{caches, orphans, AbortOnDrop, Error};

pub mod triggers;
mod watches;

/// Runs the controller until `shutdown` resolves.
///
/// After a watch fails (the apiserver restarted, a network blip), the
/// controller is rebuilt once the failing instance has run for
/// `rebuild_delay` (10 s, doubling while instances keep failing that
/// early): its watches start over from a fresh list instead of resuming
/// from a resource version. Seen with a restarted apiserver: a
/// watch resumed from before the restart can stay silent, and a resource
/// created just before the outage is then never reconciled.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Aborted with this future, even when the future is dropped mid-way.
    let _sweeper = AbortOnDrop(tokio::spawn(orphans::run(ctx.clone())));
    let shutdown = shutdown.shared();
    let mut quick_failures = 0;
    loop {
        let wait = rebuild_delay(quick_failures);
        let rebuild = Arc::new(tokio::sync::Notify::new());
        let stop = {
            let (shutdown, rebuild) = (shutdown.clone(), rebuild.clone());
            async move {
                tokio::select! {
                    _ = shutdown => {},
                    _ = rebuild.notified() => {},
                }
            }
        };
        let failed_early = run_once(ctx.clone(), stop, rebuild, wait).await;
        if futures::FutureExt::now_or_never(shutdown.clone()).is_some() {
            return;
        }
        quick_failures = if failed_early { quick_failures + 1 } else { 0 };
        tracing::info!(next_wait = ?rebuild_delay(quick_failures), "watches failed: rebuilding the controller to list everything afresh");
        ctx.metrics.controller_rebuilt();
    }
}

/// Pure: how long an instance runs before a watch failure rebuilds it,
/// after `quick_failures` instances in a row failed early. During an
/// outage a rebuild every few seconds would only add load, and a watch
/// that keeps failing (a 403 for a missing RoleBinding) would relist every
/// Secret every 10 s for ever: the wait doubles, up to 5 minutes.
pub fn rebuild_delay(quick_failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(10);
    const MOST: Duration = Duration::from_secs(300);
    FIRST
        .saturating_mul(2u32.saturating_pow(quick_failures.min(16)))
        .min(MOST)
}

/// One controller instance; `rebuild` is notified after a watch failure,
/// no sooner than `rebuild_after` after the instance started. Returns
/// whether its first watch failure came before that (it never got going).
async fn run_once(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    rebuild: Arc<tokio::sync::Notify>,
    rebuild_after: Duration,
) -> bool {
    let client = ctx.client.clone();
    let (reader, writer) = kube::runtime::reflector::store();
    let indexing = ctx.clone();
    // Other resources' source credentials (key reuse, `sharing.rs`) are
    // inputs too: what a resource holds comes from this same watch.
    let (turned, turned_by_others) = futures::channel::mpsc::unbounded();
    let credentials = watcher(
        Api::<TwitterCredential>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .modify(caches::slim_credential)
    .inspect_ok(move |event| {
        for other in triggers::for_resource_event(&indexing.index, event) {
            let _ = turned.unbounded_send(other);
        }
    })
    .map_ok(StoredCredential::event);
    let controller = Controller::for_stream(
        kube::runtime::reflector(writer, credentials).applied_objects(),
        reader,
    )
    .reconcile_on(turned_by_others.map(watches::stored_ref));
    let store = controller.store();
    let (controller, stores) = watches::watch_inputs(controller, &ctx, store);
    ctx.caches.set(Some(Arc::new(stores)));
    let rebuild_at = tokio::time::Instant::now() + rebuild_after;
    let rebuilder = Arc::new(Rebuilder {
        at: rebuild_at,
        rebuild,
        pending: Default::default(),
    });
    let on_result = rebuilder.clone();
    controller
        .graceful_shutdown_on(stop)
        .run(reconcile_stored, error_policy, ctx.clone())
        .for_each(move |result| {
            match result {
                Err(kube::runtime::controller::Error::QueueError(e)) => {
                    warn!(error = %e, "watch failed");
                    on_result.watch_failed();
                }
                Err(e) => warn!(error = %e, "reconcile failed"),
                Ok(_) => {}
            }
            std::future::ready(())
        })
        .await;
    ctx.caches.set(None);
    rebuilder.failed_early()
}

/// Schedules one rebuild of a controller instance after its first watch
/// failure, no sooner than `at`; remembers whether that failure came early.
struct Rebuilder {
    at: tokio::time::Instant,
    rebuild: Arc<tokio::sync::Notify>,
    /// The scheduled rebuild (aborted with the instance) and whether the
    /// failure that scheduled it came before `at`.
    pending: std::sync::Mutex<Option<(AbortOnDrop, bool)>>,
}

impl Rebuilder {
    fn watch_failed(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_some() {
            return;
        }
        let (at, rebuild) = (self.at, self.rebuild.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            rebuild.notify_one();
        });
        *pending = Some((AbortOnDrop(task), tokio::time::Instant::now() < self.at));
    }

    fn failed_early(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.as_ref().is_some_and(|(_, early)| *early)
    }
}

/// The resource whole from the controller's cache once its turn came, or
/// read afresh when its cached status does not read back
/// (`stored_credential.rs`).
pub async fn reconcile_stored(
    stored: Arc<StoredCredential>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = stored.namespace().unwrap_or_default();
    let api = Api::<TwitterCredential>::namespaced(ctx.client.clone(), &namespace);
    let load = move || async move {
        if let Some(tc) = stored.credential() {
            return Ok(Arc::new(tc));
        }
        let mut tc = api.get(&stored.name_any()).await?;
        caches::slim_credential(&mut tc);
        Ok(Arc::new(tc))
    };
    reconcile_at_turn(&namespace, load, ctx).await
}

fn error_policy(tc: Arc<StoredCredential>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(namespace = %tc.namespace().unwrap_or_default(), resource = %tc.name_any(), %error, "will retry");
    if counts_as_failure(tc.metadata.deletion_timestamp.is_some(), error) {
        ctx.metrics.reconcile_failed(tc.as_ref());
    }
    Action::requeue(retry_after(error).mul_f64(1.0 + fastrand::f64() / 2.0))
}

/// Pure: how soon to retry a failed reconcile. A lost race (409, or 422
/// when the finalizer patch's test of a stale copy fails) is settled by
/// reading afresh, so it is retried at once; anything else waits.
pub fn retry_after(error: &Error) -> Duration {
    match api_status(error).map(|e| e.code) {
        Some(409 | 422) => Duration::from_secs(1),
        _ => Duration::from_secs(15),
    }
}

/// Pure: whether a failed reconcile counts in the resource's failure
/// series. Not when a deleted resource's cleanup ran from a stale copy and
/// found the resource gone (404): its series were already forgotten, and
/// counting would bring one back for a resource that no longer exists.
pub fn counts_as_failure(deleting: bool, error: &Error) -> bool {
    !(deleting && api_status(error).is_some_and(|e| e.code == 404))
}

/// The apiserver's answer inside a reconcile error, if it has one.
fn api_status(error: &Error) -> Option<&kube::core::Status> {
    use kube::runtime::finalizer::Error as F;
    match error {
        Error::Kube(kube::Error::Api(e)) => Some(e),
        Error::Finalizer(f) => match f.as_ref() {
            F::AddFinalizer(kube::Error::Api(e)) | F::RemoveFinalizer(kube::Error::Api(e)) => {
                Some(e)
            }
            F::ApplyFailed(Error::Kube(kube::Error::Api(e)))
            | F::CleanupFailed(Error::Kube(kube::Error::Api(e))) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rebuilds_after_quick_failures_back_off_to_five_minutes() {
        let cases = [
            (0, 10),
            (1, 20),
            (2, 40),
            (3, 80),
            (4, 160),
            (5, 300),
            (30, 300),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                rebuild_delay(failures),
                Duration::from_secs(secs),
                "{failures}"
            );
        }
    }

    #[test]
    fn lost_races_are_retried_at_once_other_failures_later() {
        use kube::runtime::finalizer::Error as F;
        let api = |code: u16| {
            kube::Error::Api(Box::new(
                serde_json::from_value(json!({"code": code, "status": "Failure"})).unwrap(),
            ))
        };
        let finalizer = |f: F<Error>| Error::Finalizer(Box::new(f));
        let cases = [
            ("status patch lost a race", Error::Kube(api(409)), 1),
            (
                "stale copy failed the finalizer patch's test",
                finalizer(F::AddFinalizer(api(422))),
                1,
            ),
            (
                "finalizer removal lost a race",
                finalizer(F::RemoveFinalizer(api(409))),
                1,
            ),
            (
                "apply lost a race",
                finalizer(F::ApplyFailed(Error::Kube(api(409)))),
                1,
            ),
            ("forbidden", Error::Kube(api(403)), 15),
            (
                "apiserver error",
                finalizer(F::ApplyFailed(Error::Kube(api(500)))),
                15,
            ),
            (
                "invalid resource",
                Error::Invalid("no namespace".into()),
                15,
            ),
        ];
        for (what, error, secs) in cases {
            assert_eq!(retry_after(&error), Duration::from_secs(secs), "{what}");
        }
    }

    #[test]
    fn a_cleanup_that_finds_the_resource_gone_is_not_a_failure() {
        use kube::runtime::finalizer::Error as F;
        let api = |code: u16| {
            kube::Error::Api(Box::new(
                serde_json::from_value(json!({"code": code, "status": "Failure"})).unwrap(),
            ))
        };
        let finalizer = |f: F<Error>| Error::Finalizer(Box::new(f));
        let cases = [
            (
                "gone when the finalizer was removed",
                true,
                finalizer(F::RemoveFinalizer(api(404))),
                false,
            ),
            (
                "gone during cleanup",
                true,
                finalizer(F::CleanupFailed(Error::Kube(api(404)))),
                false,
            ),
            (
                "cleanup refused",
                true,
                finalizer(F::CleanupFailed(Error::Kube(api(403)))),
                true,
            ),
            (
                "a source missing while the resource lives",
                false,
                Error::Kube(api(404)),
                true,
            ),
            (
                "a lost race while deleting",
                true,
                finalizer(F::RemoveFinalizer(api(409))),
                true,
            ),
        ];
        for (what, deleting, error, counts) in cases {
            assert_eq!(counts_as_failure(deleting, &error), counts, "{what}");
        }
    }
}
