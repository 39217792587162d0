//! The series that name a resource, kept as one record per resource and
//! written out at each scrape. As a prometheus-client family per metric,
//! each of a resource's ~40 series was a hash-table entry with its own
//! labels and counter allocation: ~2 KB a resource, a tenth of the
//! operator's memory per resource (docs/benchmarks.md "Memory, seventh
//! pass"). The exposition is the families' own: same names, help, types
//! and labels.

use std::collections::HashMap;

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    MetricEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// A label value shared by every series that names the same namespace,
/// resource, environment or credential (one allocation each, interned by
/// `metrics::Labels`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) struct Label(pub Arc<str>);

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_ref(), encoder)
    }
}

/// One resource's series; `None` where the series does not exist (yet).
#[derive(Debug, Default)]
pub(super) struct Resource {
    pub reconciles: Option<u64>,
    pub failures: Option<u64>,
    pub ready: Option<i64>,
    pub usage: Option<f64>,
    pub access_review_due: Option<i64>,
    pub environments: Vec<(Label, Environment)>,
}

/// One environment's series.
#[derive(Debug, Default)]
pub(super) struct Environment {
    pub synced: Option<i64>,
    pub revision: Option<i64>,
    pub shared: Option<i64>,
    pub verified: Option<i64>,
    pub next_rotation: Option<i64>,
    pub rate_limit_remaining: Option<i64>,
    pub rate_limit_limit: Option<i64>,
    pub credentials: Vec<(Label, Credential)>,
}

/// One source credential's series, by its key.
#[derive(Debug, Default)]
pub(super) struct Credential {
    pub age: Option<i64>,
    pub rotations: Option<u64>,
}

impl Resource {
    pub fn environment(&mut self, name: &Label) -> &mut Environment {
        entry(&mut self.environments, name)
    }
}

impl Environment {
    pub fn credential(&mut self, key: &Label) -> &mut Credential {
        entry(&mut self.credentials, key)
    }
}

fn entry<'a, T: Default>(list: &'a mut Vec<(Label, T)>, name: &Label) -> &'a mut T {
    let at = match list.iter().position(|(n, _)| n == name) {
        Some(at) => at,
        None => {
            list.push((name.clone(), T::default()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

/// Every resource's series, by namespace and name.
pub(super) type Table = HashMap<(Label, Label), Resource>;

/// A value of one series.
#[derive(Clone, Copy)]
enum Value {
    Gauge(i64),
    Ratio(f64),
    Counter(u64),
}

impl Value {
    fn encode(self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Value::Gauge(v) => ConstGauge::new(v).encode(encoder),
            Value::Ratio(v) => ConstGauge::new(v).encode(encoder),
            Value::Counter(v) => ConstCounter::new(v).encode(encoder),
        }
    }
}

/// Where a metric's series live, and how to read one.
enum Level {
    Resource(fn(&Resource) -> Option<Value>),
    Environment(fn(&Environment) -> Option<Value>),
    Credential(fn(&Credential) -> Option<Value>),
}

/// A metric: its name (under the registry's `keyguard_` prefix), help,
/// type, and where its values are.
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    level: Level,
}

const fn gauge(name: &'static str, help: &'static str, level: Level) -> Metric {
    Metric {
        name,
        help,
        kind: MetricType::Gauge,
        level,
    }
}

const fn counter(name: &'static str, help: &'static str, level: Level) -> Metric {
    Metric {
        name,
        help,
        kind: MetricType::Counter,
        level,
    }
}

/// The metrics, in the order they are written.
const METRICS: &[Metric] = &[
    counter(
        "reconciles",
        "Reconciles of TwitterCredentials",
        Level::Resource(|r| r.reconciles.map(Value::Counter)),
    ),
    counter(
        "reconcile_failures",
        "Reconciles that failed and will be retried",
        Level::Resource(|r| r.failures.map(Value::Counter)),
    ),
    gauge(
        "credential_ready",
        "1 when every environment of the TwitterCredential is synced",
        Level::Resource(|r| r.ready.map(Value::Gauge)),
    ),
    gauge(
        "environment_synced",
        "1 when the environment's target Secret is current",
        Level::Environment(|e| e.synced.map(Value::Gauge)),
    ),
    gauge(
        "environment_revision",
        "Revision of the environment's projected content",
        Level::Environment(|e| e.revision.map(Value::Gauge)),
    ),
    gauge(
        "environment_credential_shared",
        "1 when another environment projects one of this environment's source credentials",
        Level::Environment(|e| e.shared.map(Value::Gauge)),
    ),
    gauge(
        "environment_verified",
        "1 when the X API accepted the environment's credentials at the last verification",
        Level::Environment(|e| e.verified.map(Value::Gauge)),
    ),
    gauge(
        "access_review_due",
        "1 when the TwitterCredential's declared access review is due (accessReview)",
        Level::Resource(|r| r.access_review_due.map(Value::Gauge)),
    ),
    gauge(
        "usage_ratio",
        "The app's post usage as a fraction of its project cap",
        Level::Resource(|r| r.usage.map(Value::Ratio)),
    ),
    gauge(
        "rate_limit_remaining",
        "x-rate-limit-remaining seen at the environment's last verification",
        Level::Environment(|e| e.rate_limit_remaining.map(Value::Gauge)),
    ),
    gauge(
        "rate_limit_limit",
        "x-rate-limit-limit seen at the environment's last verification",
        Level::Environment(|e| e.rate_limit_limit.map(Value::Gauge)),
    ),
    counter(
        "rotations",
        "Completed rotations, by credential kind",
        Level::Credential(|c| c.rotations.map(Value::Counter)),
    ),
    gauge(
        "credential_age_seconds",
        "Age of each source credential since the operator first saw its value",
        Level::Credential(|c| c.age.map(Value::Gauge)),
    ),
    gauge(
        "next_rotation_timestamp_seconds",
        "When the environment's next scheduled rotation or refresh is due (Unix time)",
        Level::Environment(|e| e.next_rotation.map(Value::Gauge)),
    ),
];

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CredentialLabels {
    namespace: Label,
    name: Label,
    environment: Label,
    credential: Label,
}

/// Writes the table's series at each scrape.
#[derive(Debug)]
pub(super) struct Series(pub Arc<std::sync::Mutex<Table>>);

impl Collector for Series {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let table = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for metric in METRICS {
            // As `Registry::register` writes help: ending in a period.
            let help = format!("{}.", metric.help);
            let mut out = encoder.encode_descriptor(metric.name, &help, None, metric.kind)?;
            for ((namespace, name), resource) in table.iter() {
                write_resource(&mut out, &metric.level, namespace, name, resource)?;
            }
        }
        Ok(())
    }
}

/// Writes one resource's series of one metric.
fn write_resource(
    out: &mut MetricEncoder,
    level: &Level,
    namespace: &Label,
    name: &Label,
    resource: &Resource,
) -> Result<(), std::fmt::Error> {
    let environments = resource.environments.iter();
    match level {
        Level::Resource(read) => {
            if let Some(v) = read(resource) {
                let labels = ResourceLabels {
                    namespace: namespace.clone(),
                    name: name.clone(),
                };
                v.encode(out.encode_family(&labels)?)?;
            }
        }
        Level::Environment(read) => {
            for (environment, e) in environments {
                if let Some(v) = read(e) {
                    let labels = EnvironmentLabels {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        environment: environment.clone(),
                    };
                    v.encode(out.encode_family(&labels)?)?;
                }
            }
        }
        Level::Credential(read) => {
            for (environment, e) in environments {
                for (credential, c) in &e.credentials {
                    if let Some(v) = read(c) {
                        let labels = CredentialLabels {
                            namespace: namespace.clone(),
                            name: name.clone(),
                            environment: environment.clone(),
                            credential: credential.clone(),
                        };
                        v.encode(out.encode_family(&labels)?)?;
                    }
                }
            }
        }
    }
    Ok(())
}
