//! Prometheus metrics. Labels name resources, never values.

mod resource_series;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::resource::{TwitterCredential, TwitterCredentialStatus};
use kube::ResourceExt;
use resource_series::{Label, Series, Table};

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

/// The operator's metrics, cheap to clone. The series that name a
/// resource live in one record per resource (`resource_series`); the
/// rest are prometheus-client's own.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    labels: Arc<Mutex<Labels>>,
    resources: Arc<Mutex<Table>>,
    duration: Histogram,
    orphans: Counter,
    rebuilds: Counter,
    queue_depth: Gauge,
    running: Gauge,
    requests_waiting: Gauge,
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
            resources: Arc::default(),
            duration: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            orphans: Counter::default(),
            rebuilds: Counter::default(),
            queue_depth: Gauge::default(),
            running: Gauge::default(),
            requests_waiting: Gauge::default(),
            x_api_requests: Family::default(),
            x_api_duration: Family::new_with_constructor(|| {
                Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            }),
        };
        // Families share their series between clones: the registry's
        // copies are the ones the methods below update.
        let mut registry = Registry::with_prefix("keyguard");
        metrics.register_reconciles(&mut registry);
        metrics.register_operator(&mut registry);
        registry.register_collector(Box::new(Series(metrics.resources.clone())));
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }
}

impl Metrics {
    /// How reconciles go: time and the work queue (their counts by
    /// resource are in `resource_series`).
    fn register_reconciles(&self, r: &mut Registry) {
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
        r.register(
            "apiserver_requests_waiting",
            "Requests to the apiserver waiting for a turn (--max-apiserver-requests)",
            self.requests_waiting.clone(),
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

    /// Runs `update` on the record of `tc`'s series (created if new).
    /// Labels are interned before the table is locked: the two locks are
    /// never held together.
    fn update<R>(
        &self,
        tc: &impl kube::Resource,
        update: impl FnOnce(&mut resource_series::Resource) -> R,
    ) -> R {
        let key = (
            self.label(&tc.namespace().unwrap_or_default()),
            self.label(&tc.name_any()),
        );
        let mut table = self.resources.lock().unwrap_or_else(|p| p.into_inner());
        update(table.entry(key).or_default())
    }

    /// As [`Metrics::update`], on one credential of one environment.
    fn update_credential(
        &self,
        tc: &TwitterCredential,
        environment: &str,
        credential: &str,
        update: impl FnOnce(&mut resource_series::Credential),
    ) {
        let (environment, credential) = (self.label(environment), self.label(credential));
        self.update(tc, |r| {
            update(r.environment(&environment).credential(&credential))
        });
    }

    pub fn reconciled(&self, tc: &TwitterCredential, took: Duration) {
        self.update(tc, |r| *r.reconciles.get_or_insert(0) += 1);
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

    pub fn request_waiting(&self) {
        self.requests_waiting.inc();
    }

    pub fn request_sent(&self) {
        self.requests_waiting.dec();
    }

    pub fn controller_rebuilt(&self) {
        self.rebuilds.inc();
    }

    pub fn reconcile_failed(&self, tc: &impl kube::Resource) {
        self.update(tc, |r| *r.failures.get_or_insert(0) += 1);
    }

    pub fn observe_status(&self, tc: &TwitterCredential, status: &TwitterCredentialStatus) {
        use crate::conditions::{is_true, ConditionType};
        let environments: Vec<Label> = status
            .environments
            .iter()
            .map(|e| self.label(&e.name))
            .collect();
        self.update(tc, |r| {
            r.ready = Some(is_true(&status.conditions, ConditionType::Ready) as i64);
            for (e, name) in status.environments.iter().zip(&environments) {
                let series = r.environment(name);
                series.next_rotation = e.next_rotation.as_ref().map(|t| t.0.as_second());
                if let Some(v) = e.rate_limit_remaining {
                    series.rate_limit_remaining = Some(v);
                }
                if let Some(v) = e.rate_limit_limit {
                    series.rate_limit_limit = Some(v);
                }
                series.synced = Some(is_true(&e.conditions, ConditionType::Synced) as i64);
                series.revision = Some(e.revision);
                series.shared =
                    Some(is_true(&e.conditions, ConditionType::CredentialShared) as i64);
            }
        });
    }

    pub fn rotated(&self, tc: &TwitterCredential, environment: &str, credential: &str) {
        self.update_credential(tc, environment, credential, |c| {
            *c.rotations.get_or_insert(0) += 1
        });
    }

    pub fn credential_age(
        &self,
        tc: &TwitterCredential,
        environment: &str,
        credential: &str,
        age: Duration,
    ) {
        self.update_credential(tc, environment, credential, |c| {
            c.age = Some(age.as_secs() as i64)
        });
    }

    pub fn verified(&self, tc: &TwitterCredential, environment: &str, ok: bool) {
        let environment = self.label(environment);
        self.update(tc, |r| {
            r.environment(&environment).verified = Some(ok as i64)
        });
    }

    /// Whether the resource's access review is due; `None`: none declared.
    pub fn access_review_due(&self, tc: &TwitterCredential, due: Option<bool>) {
        self.update(tc, |r| r.access_review_due = due.map(i64::from));
    }

    pub fn usage_ratio(&self, tc: &TwitterCredential, ratio: f64) {
        self.update(tc, |r| r.usage = Some(ratio));
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

    /// Drops the series of a resource that went (all of them), or of its
    /// environments removed from the spec.
    pub fn forget_gone(&self, gone: &crate::series::Gone) {
        use crate::series::Gone;
        let seen = match gone {
            Gone::Resource(seen) | Gone::Environments(seen) => seen,
        };
        let key = (self.label(&seen.namespace), self.label(&seen.name));
        {
            let mut table = self.resources.lock().unwrap_or_else(|p| p.into_inner());
            match gone {
                Gone::Resource(_) => {
                    table.remove(&key);
                }
                Gone::Environments(_) => {
                    if let Some(r) = table.get_mut(&key) {
                        r.environments
                            .retain(|(e, _)| !seen.environments.iter().any(|s| **s == *e.0));
                    }
                }
            }
        }
        // The sweep drops the values nothing else holds: not these two.
        drop(key);
        self.labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forgot();
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

    /// `bot` in `team`, with environment `prod`, after one of everything
    /// the operator records.
    fn recorded() -> (Metrics, TwitterCredential) {
        let m = Metrics::default();
        let tc: TwitterCredential = serde_json::from_value(serde_json::json!({
            "apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": "bot", "namespace": "team"},
            "spec": {"environments": [{"name": "prod", "source": {"secretRef": {"name": "keys"}},
                "target": {"secretName": "out", "keys": ["apiKey"]}}]}
        }))
        .unwrap();
        let status: TwitterCredentialStatus = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "",
                "lastTransitionTime": "2026-12-04T00:00:00Z"}],
            "environments": [{"name": "prod", "revision": 3, "nextRotation": "2026-12-06T00:00:00Z",
                "rateLimitRemaining": 290, "rateLimitLimit": 300,
                "conditions": [{"type": "Synced", "status": "True", "reason": "Synced", "message": "",
                    "lastTransitionTime": "2026-12-04T00:00:00Z"}]}]
        }))
        .unwrap();
        m.reconciled(&tc, Duration::from_millis(20));
        m.reconcile_failed(&tc);
        m.observe_status(&tc, &status);
        m.verified(&tc, "prod", true);
        m.rotated(&tc, "prod", "bearerToken");
        m.credential_age(&tc, "prod", "apiKey", Duration::from_secs(90));
        m.access_review_due(&tc, Some(true));
        m.usage_ratio(&tc, 0.25);
        (m, tc)
    }

    #[test]
    fn every_series_of_a_resource_is_exposed_and_forgotten_with_it() {
        let (m, tc) = recorded();
        let text = m.render();
        let labels = r#"namespace="team",name="bot""#;
        let env = format!(r#"{labels},environment="prod""#);
        for line in [
            "# TYPE keyguard_reconciles counter".to_string(),
            format!("keyguard_reconciles_total{{{labels}}} 1"),
            format!("keyguard_reconcile_failures_total{{{labels}}} 1"),
            format!("keyguard_credential_ready{{{labels}}} 1"),
            format!("keyguard_access_review_due{{{labels}}} 1"),
            "# TYPE keyguard_usage_ratio gauge".to_string(),
            format!("keyguard_usage_ratio{{{labels}}} 0.25"),
            format!("keyguard_environment_synced{{{env}}} 1"),
            format!("keyguard_environment_revision{{{env}}} 3"),
            format!("keyguard_environment_credential_shared{{{env}}} 0"),
            format!("keyguard_environment_verified{{{env}}} 1"),
            format!("keyguard_next_rotation_timestamp_seconds{{{env}}} 1796515200"),
            format!("keyguard_rate_limit_remaining{{{env}}} 290"),
            format!("keyguard_rate_limit_limit{{{env}}} 300"),
            format!(r#"keyguard_rotations_total{{{env},credential="bearerToken"}} 1"#),
            format!(r#"keyguard_credential_age_seconds{{{env},credential="apiKey"}} 90"#),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\nnot in\n{text}");
        }
        m.forget(&tc);
        let text = m.render();
        assert!(!text.contains(r#"name="bot""#), "{text}");
        // What does not name a resource stays.
        assert!(
            text.contains("keyguard_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn series_of_one_resource_share_their_label_values() {
        let m = Metrics::default();
        let tc = credential("team", "bot");
        m.verified(&tc, "prod", true);
        m.rotated(&tc, "prod", "bearerToken");
        let labels = m.labels.lock().unwrap();
        let name = labels.values.get("bot").expect("interned");
        // The set's own, and the resource's record of all its series.
        assert_eq!(Arc::strong_count(name), 2);
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
