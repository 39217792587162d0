//! Prometheus metrics. Labels name resources, never values.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::{
    text::encode, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::resource::{TwitterCredential, TwitterCredentialStatus};
use kube::ResourceExt;

/// A label value shared by every series that names the same namespace,
/// resource or environment: a resource has ~30 series, and each would
/// otherwise hold its own copies of the same three strings.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Label(Arc<str>);

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_ref(), encoder)
    }
}

/// The label values in use, one allocation each.
#[derive(Default)]
struct Labels {
    values: HashSet<Arc<str>>,
    /// Resources or environments forgotten since the last sweep.
    forgotten: usize,
}

impl Labels {
    fn get(&mut self, value: &str) -> Label {
        if let Some(v) = self.values.get(value) {
            return Label(v.clone());
        }
        let v: Arc<str> = value.into();
        self.values.insert(v.clone());
        Label(v)
    }

    /// After a forget: drops the values no series holds any more, once
    /// the forgets since the last sweep reach half the values (a sweep
    /// reads them all, so a mass deletion sweeps a few times, not once
    /// per resource).
    fn forgot(&mut self) {
        self.forgotten += 1;
        if self.forgotten * 2 >= self.values.len() {
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.forgotten = 0;
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    namespace: Label,
    name: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvironmentLabels {
    namespace: Label,
    name: Label,
    environment: Label,
}

/// The operator's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    labels: Arc<Mutex<Labels>>,
    reconciles: Family<ResourceLabels, Counter>,
    failures: Family<ResourceLabels, Counter>,
    duration: Histogram,
    ready: Family<ResourceLabels, Gauge>,
    synced: Family<EnvironmentLabels, Gauge>,
    revision: Family<EnvironmentLabels, Gauge>,
    shared: Family<EnvironmentLabels, Gauge>,
    orphans: Counter,
    rotations: Family<RotationLabels, Counter>,
    credential_age: Family<RotationLabels, Gauge>,
    verified: Family<EnvironmentLabels, Gauge>,
    next_rotation: Family<EnvironmentLabels, Gauge>,
    rate_limit_remaining: Family<EnvironmentLabels, Gauge>,
    rate_limit_limit: Family<EnvironmentLabels, Gauge>,
    rebuilds: Counter,
    queue_depth: Gauge,
    running: Gauge,
    usage: Family<ResourceLabels, RatioGauge>,
    access_review_due: Family<ResourceLabels, Gauge>,
    x_api_requests: Family<XApiLabels, Counter>,
    x_api_duration: Family<EndpointLabels, Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XApiLabels {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RotationLabels {
    namespace: Label,
    name: Label,
    environment: Label,
    credential: Label,
}

type RatioGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            registry: Arc::default(),
            labels: Arc::default(),
            reconciles: Family::default(),
            failures: Family::default(),
            duration: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            ready: Family::default(),
            synced: Family::default(),
            revision: Family::default(),
            shared: Family::default(),
            orphans: Counter::default(),
            rotations: Family::default(),
            credential_age: Family::default(),
            verified: Family::default(),
            next_rotation: Family::default(),
            rate_limit_remaining: Family::default(),
            rate_limit_limit: Family::default(),
            rebuilds: Counter::default(),
            queue_depth: Gauge::default(),
            running: Gauge::default(),
            usage: Family::default(),
            access_review_due: Family::default(),
            x_api_requests: Family::default(),
            x_api_duration: Family::new_with_constructor(|| {
                Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            }),
        };
        // Families share their series between clones: the registry's
        // copies are the ones the methods below update.
        let mut registry = Registry::with_prefix("keyguard");
        metrics.register_reconciles(&mut registry);
        metrics.register_environments(&mut registry);
        metrics.register_rotations(&mut registry);
        metrics.register_operator(&mut registry);
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }
}

impl Metrics {
    /// How reconciles go: counts, failures, time, the work queue.
    fn register_reconciles(&self, r: &mut Registry) {
        r.register(
            "reconciles",
            "Reconciles of TwitterCredentials",
            self.reconciles.clone(),
        );
        r.register(
            "reconcile_failures",
            "Reconciles that failed and will be retried",
            self.failures.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            self.duration.clone(),
        );
        r.register(
            "reconcile_queue_depth",
            "Reconciles waiting for a free slot (--max-concurrent-reconciles)",
            self.queue_depth.clone(),
        );
        r.register(
            "reconciles_running",
            "Reconciles running now",
            self.running.clone(),
        );
    }

    /// The state of each resource and environment.
    fn register_environments(&self, r: &mut Registry) {
        r.register(
            "credential_ready",
            "1 when every environment of the TwitterCredential is synced",
            self.ready.clone(),
        );
        r.register(
            "environment_synced",
            "1 when the environment's target Secret is current",
            self.synced.clone(),
        );
        r.register(
            "environment_revision",
            "Revision of the environment's projected content",
            self.revision.clone(),
        );
        r.register(
            "environment_credential_shared",
            "1 when another environment projects one of this environment's source credentials",
            self.shared.clone(),
        );
        r.register(
            "environment_verified",
            "1 when the X API accepted the environment's credentials at the last verification",
            self.verified.clone(),
        );
        r.register(
            "access_review_due",
            "1 when the TwitterCredential's declared access review is due (accessReview)",
            self.access_review_due.clone(),
        );
        r.register(
            "usage_ratio",
            "The app's post usage as a fraction of its project cap",
            self.usage.clone(),
        );
        r.register(
            "rate_limit_remaining",
            "x-rate-limit-remaining seen at the environment's last verification",
            self.rate_limit_remaining.clone(),
        );
        r.register(
            "rate_limit_limit",
            "x-rate-limit-limit seen at the environment's last verification",
            self.rate_limit_limit.clone(),
        );
    }

    /// Rotations, credential ages and schedules, and cleanup.
    fn register_rotations(&self, r: &mut Registry) {
        r.register(
            "rotations",
            "Completed rotations, by credential kind",
            self.rotations.clone(),
        );
        r.register(
            "credential_age_seconds",
            "Age of each source credential since the operator first saw its value",
            self.credential_age.clone(),
        );
        r.register(
            "next_rotation_timestamp_seconds",
            "When the environment's next scheduled rotation or refresh is due (Unix time)",
            self.next_rotation.clone(),
        );
        r.register(
            "orphans_removed",
            "Objects removed because the TwitterCredential that created them is gone",
            self.orphans.clone(),
        );
    }

    /// The operator itself: controller rebuilds, X API calls, build.
    fn register_operator(&self, r: &mut Registry) {
        r.register(
            "controller_rebuilds",
            "Times the controller was rebuilt to list afresh after its watches failed",
            self.rebuilds.clone(),
        );
        r.register(
            "x_api_requests",
            "X API calls, by endpoint and status (2xx, X's HTTP status, or transport)",
            self.x_api_requests.clone(),
        );
        r.register(
            "x_api_request_duration_seconds",
            "Time an X API call took, answer or not",
            self.x_api_duration.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        r.register(
            "build_info",
            "Always 1; the operator's version as a label",
            build_info,
        );
    }
}

impl Metrics {
    fn label(&self, value: &str) -> Label {
        self.labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(value)
    }

    fn labels(&self, tc: &impl kube::Resource) -> ResourceLabels {
        ResourceLabels {
            namespace: self.label(&tc.namespace().unwrap_or_default()),
            name: self.label(&tc.name_any()),
        }
    }

    pub fn reconciled(&self, tc: &TwitterCredential, took: Duration) {
        self.reconciles.get_or_create(&self.labels(tc)).inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn reconcile_queued(&self) {
        self.queue_depth.inc();
    }

    pub fn reconcile_dequeued(&self) {
        self.queue_depth.dec();
    }

    pub fn reconcile_started(&self) {
        self.running.inc();
    }

    pub fn reconcile_finished(&self) {
        self.running.dec();
    }

    pub fn controller_rebuilt(&self) {
        self.rebuilds.inc();
    }

    pub fn reconcile_failed(&self, tc: &impl kube::Resource) {
        self.failures.get_or_create(&self.labels(tc)).inc();
    }

    pub fn observe_status(&self, tc: &TwitterCredential, status: &TwitterCredentialStatus) {
        let l = self.labels(tc);
        let ready =
            crate::conditions::is_true(&status.conditions, crate::conditions::ConditionType::Ready);
        self.ready.get_or_create(&l).set(ready as i64);
        for e in &status.environments {
            let el = EnvironmentLabels {
                namespace: l.namespace.clone(),
                name: l.name.clone(),
                environment: self.label(&e.name),
            };
            match &e.next_rotation {
                Some(t) => {
                    self.next_rotation.get_or_create(&el).set(t.0.as_second());
                }
                None => {
                    self.next_rotation.remove(&el);
                }
            }
            if let Some(r) = e.rate_limit_remaining {
                self.rate_limit_remaining.get_or_create(&el).set(r);
            }
            if let Some(l) = e.rate_limit_limit {
                self.rate_limit_limit.get_or_create(&el).set(l);
            }
            self.synced
                .get_or_create(&el)
                .set(crate::conditions::is_true(
                    &e.conditions,
                    crate::conditions::ConditionType::Synced,
                ) as i64);
            self.revision.get_or_create(&el).set(e.revision);
            self.shared
                .get_or_create(&el)
                .set(crate::conditions::is_true(
                    &e.conditions,
                    crate::conditions::ConditionType::CredentialShared,
                ) as i64);
        }
    }

    pub fn rotated(&self, tc: &TwitterCredential, environment: &str, credential: &str) {
        let l = self.labels(tc);
        self.rotations
            .get_or_create(&RotationLabels {
                namespace: l.namespace,
                name: l.name,
                environment: self.label(environment),
                credential: self.label(credential),
            })
            .inc();
    }

    pub fn credential_age(
        &self,
        tc: &TwitterCredential,
        environment: &str,
        credential: &str,
        age: Duration,
    ) {
        let l = self.labels(tc);
        self.credential_age
            .get_or_create(&RotationLabels {
                namespace: l.namespace,
                name: l.name,
                environment: self.label(environment),
                credential: self.label(credential),
            })
            .set(age.as_secs() as i64);
    }

    pub fn verified(&self, tc: &TwitterCredential, environment: &str, ok: bool) {
        let l = self.labels(tc);
        self.verified
            .get_or_create(&EnvironmentLabels {
                namespace: l.namespace,
                name: l.name,
                environment: self.label(environment),
            })
            .set(ok as i64);
    }

    /// Whether the resource's access review is due; `None`: none declared.
    pub fn access_review_due(&self, tc: &TwitterCredential, due: Option<bool>) {
        match due {
            Some(due) => {
                self.access_review_due
                    .get_or_create(&self.labels(tc))
                    .set(due as i64);
            }
            None => {
                self.access_review_due.remove(&self.labels(tc));
            }
        }
    }

    pub fn usage_ratio(&self, tc: &TwitterCredential, ratio: f64) {
        self.usage.get_or_create(&self.labels(tc)).set(ratio);
    }

    /// One X API call: its endpoint, its status label and how long it took.
    pub fn x_api_call(&self, endpoint: &str, status: &str, took: Duration) {
        self.x_api_requests
            .get_or_create(&XApiLabels {
                endpoint: endpoint.into(),
                status: status.into(),
            })
            .inc();
        self.x_api_duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn orphans_removed(&self, n: u64) {
        self.orphans.inc_by(n);
    }

    /// Drops the series of a deleted resource.
    pub fn forget(&self, tc: &TwitterCredential) {
        self.forget_gone(&crate::series::Gone::Resource(crate::series::Seen::of(tc)));
    }

    /// Drops the series of a resource that went, or of its environments
    /// removed from the spec.
    pub fn forget_gone(&self, gone: &crate::series::Gone) {
        self.remove_series(gone);
        self.labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forgot();
    }

    fn remove_series(&self, gone: &crate::series::Gone) {
        use crate::series::Gone;
        let seen = match gone {
            Gone::Resource(seen) => {
                let l = ResourceLabels {
                    namespace: self.label(&seen.namespace),
                    name: self.label(&seen.name),
                };
                self.ready.remove(&l);
                self.usage.remove(&l);
                self.access_review_due.remove(&l);
                self.reconciles.remove(&l);
                self.failures.remove(&l);
                seen
            }
            Gone::Environments(seen) => seen,
        };
        let l = ResourceLabels {
            namespace: self.label(&seen.namespace),
            name: self.label(&seen.name),
        };
        for env in &seen.environments {
            let el = EnvironmentLabels {
                namespace: l.namespace.clone(),
                name: l.name.clone(),
                environment: self.label(env),
            };
            self.synced.remove(&el);
            self.revision.remove(&el);
            self.shared.remove(&el);
            self.verified.remove(&el);
            self.next_rotation.remove(&el);
            self.rate_limit_remaining.remove(&el);
            self.rate_limit_limit.remove(&el);
            for key in keyguard_credentials::CredentialKey::ALL {
                let rl = RotationLabels {
                    namespace: l.namespace.clone(),
                    name: l.name.clone(),
                    environment: self.label(env),
                    credential: self.label(key.as_str()),
                };
                self.credential_age.remove(&rl);
                self.rotations.remove(&rl);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(namespace: &str, name: &str) -> TwitterCredential {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"environments": []}
        }))
        .unwrap()
    }

    #[test]
    fn series_of_one_resource_share_their_label_values() {
        let m = Metrics::default();
        let tc = credential("team", "bot");
        m.verified(&tc, "prod", true);
        m.rotated(&tc, "prod", "bearer_token");
        let labels = m.labels.lock().unwrap();
        let name = labels.values.get("bot").expect("interned");
        // The set's own, and one per series (verified, rotations).
        assert_eq!(Arc::strong_count(name), 3);
    }

    #[test]
    fn values_of_forgotten_resources_are_swept_and_the_exposition_is_unchanged() {
        let m = Metrics::default();
        let many: Vec<_> = (0..100)
            .map(|i| credential("team", &format!("bot-{i}")))
            .collect();
        for tc in &many {
            m.verified(tc, "prod", true);
        }
        assert!(m.render().contains(
            "keyguard_environment_verified{namespace=\"team\",name=\"bot-7\",environment=\"prod\"} 1"
        ));
        for tc in &many[1..] {
            let seen = crate::series::Seen {
                environments: vec!["prod".into()],
                ..crate::series::Seen::of(tc)
            };
            m.forget_gone(&crate::series::Gone::Resource(seen));
        }
        let labels = m.labels.lock().unwrap();
        assert!(labels.values.contains("bot-0"), "still in use");
        assert!(
            labels.values.len() < 64,
            "{} values kept",
            labels.values.len()
        );
        drop(labels);
        assert!(!m.render().contains("bot-7"));
    }
}
