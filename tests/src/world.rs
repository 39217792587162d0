//! A test world: a local control plane with the CRD, the X API emulator,
//! an in-process operator and one X app, with helpers to drive them the
//! way a user would.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use keyguard_operator::{TwitterCredential, TwitterCredentialStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use serde_json::json;

use crate::fixtures;
use crate::kube_helpers::{eventually, install_crd};
use crate::operator::RunningOperator;
use crate::status::{Conditions, StatusReads};
use crate::x_api::{AccessLevel, AppCredentials, XApiEmulator};
use crate::ControlPlane;

/// How long a test waits for what must happen. An upper bound, never a
/// timed assertion: a loaded CI machine (two cores, two control planes at
/// once) needed more than 30 s now and then.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct World {
    pub cp: ControlPlane,
    /// Shared with a world [`World::beside`] this one.
    pub x: std::sync::Arc<XApiEmulator>,
    pub client: Client,
    pub app: AppCredentials,
    pub operator: Option<RunningOperator>,
}

impl World {
    pub async fn start() -> World {
        Self::start_configured(|_| {}).await
    }

    /// A world whose operator's context `configure` adjusts.
    pub async fn start_configured(
        configure: impl FnOnce(&mut keyguard_operator::context::Context),
    ) -> World {
        let cp = ControlPlane::start().await.expect("control plane");
        install_crd(&cp).await;
        let x = std::sync::Arc::new(XApiEmulator::start().await);
        let app = x.create_app(AccessLevel::Read);
        Self::on(cp, x, app, configure).await
    }

    /// A second cluster (its own control plane and operator) whose
    /// operator talks to this world's X API emulator, with the same app:
    /// what two clusters sharing one X app look like.
    pub async fn beside(
        &self,
        configure: impl FnOnce(&mut keyguard_operator::context::Context),
    ) -> World {
        let cp = ControlPlane::start().await.expect("control plane");
        install_crd(&cp).await;
        Self::on(cp, self.x.clone(), self.app.clone(), configure).await
    }

    async fn on(
        cp: ControlPlane,
        x: std::sync::Arc<XApiEmulator>,
        app: AppCredentials,
        configure: impl FnOnce(&mut keyguard_operator::context::Context),
    ) -> World {
        let client = cp.client().await.unwrap();
        let operator = Some(
            RunningOperator::start_configured(cp.client().await.unwrap(), &x, None, configure)
                .await,
        );
        World {
            cp,
            x,
            client,
            app,
            operator,
        }
    }

    /// Creates namespace `name` with `labels`.
    pub async fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        fixtures::create_namespace(&self.client, name, labels).await;
    }

    /// Applies the source Secret `ns/name` holding `data`.
    pub async fn source(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        fixtures::apply_source(&self.client, ns, name, data).await;
    }

    pub fn full_source(&self) -> Vec<(&str, &str)> {
        vec![
            ("apiKey", self.app.api_key.as_str()),
            ("apiKeySecret", self.app.api_key_secret.as_str()),
            ("accessToken", self.app.access_token.as_str()),
            ("accessTokenSecret", self.app.access_token_secret.as_str()),
        ]
    }

    /// Server-side applies a TwitterCredential (a
    /// [`Credential`](crate::credential::Credential) or the operator's type)
    /// in `ns`.
    pub async fn apply(&self, ns: &str, resource: impl Into<TwitterCredential>) {
        fixtures::apply_credential(&self.client, ns, resource).await;
    }

    pub async fn secret(&self, ns: &str, name: &str) -> Option<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .unwrap()
    }

    pub async fn wait_secret(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Secret) -> bool,
    ) -> Secret {
        eventually(what, WAIT, || async {
            self.secret(ns, name).await.filter(|s| check(s))
        })
        .await
    }

    /// The resource's status; empty while the operator has written none.
    pub async fn status(&self, ns: &str, name: &str) -> TwitterCredentialStatus {
        let tc = Api::<TwitterCredential>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
            .unwrap();
        tc.status.unwrap_or_default()
    }

    /// Waits until the resource (`env` None) or its environment `env` has
    /// condition `type_` with `status`, and returns that condition.
    pub async fn wait_condition(
        &self,
        ns: &str,
        name: &str,
        env: Option<&str>,
        type_: &str,
        status: &str,
    ) -> Condition {
        eventually(
            &format!("{name} {env:?} condition {type_}={status}"),
            WAIT,
            || async {
                let st = self.status(ns, name).await;
                let conditions = match env {
                    None => st.conditions(),
                    Some(e) => st.environment(e)?.conditions(),
                };
                conditions
                    .iter()
                    .find(|c| c.type_ == type_ && c.status == status)
                    .cloned()
            },
        )
        .await
    }

    /// Asks for a sync now and waits for positive evidence that the
    /// operator reconciled the resource again (its metrics count it).
    pub async fn force_sync_and_wait(&self, ns: &str, name: &str, token: &str) {
        let op = self.operator.as_ref().expect("an operator is running");
        let seen = reconciles(op, ns, name);
        let force = json!({"metadata": {"annotations": {"keyguard.dev/force-sync": token}}});
        Api::<TwitterCredential>::namespaced(self.client.clone(), ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(&force))
            .await
            .unwrap();
        eventually("the operator to reconcile again", WAIT, || async {
            (reconciles(op, ns, name) > seen).then_some(())
        })
        .await;
    }

    /// Waits for an Event (events.k8s.io) of `reason` in `ns`.
    pub async fn wait_event(&self, ns: &str, reason: &str) -> k8s_openapi::api::events::v1::Event {
        let api = Api::<k8s_openapi::api::events::v1::Event>::namespaced(self.client.clone(), ns);
        eventually(&format!("a {reason} Event"), WAIT, || async {
            let events = api.list(&kube::api::ListParams::default()).await.ok()?;
            events
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
        })
        .await
    }

    pub fn values(&self) -> Vec<String> {
        let mut v = vec![
            self.app.api_key.clone(),
            self.app.api_key_secret.clone(),
            self.app.access_token.clone(),
            self.app.access_token_secret.clone(),
        ];
        if let Some(b) = self.x.current_bearer(&self.app.api_key) {
            v.push(b.clone());
            v.push(percent_decode(&b));
        }
        v
    }
}

pub fn percent_decode(s: &str) -> String {
    s.replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
}

pub fn keys(s: &Secret) -> Vec<String> {
    s.data
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn value(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// How many reconciles of `namespace/name` an operator's metrics count.
pub fn reconciles(operator: &RunningOperator, namespace: &str, name: &str) -> u64 {
    let wanted = format!("name=\"{name}\",namespace=\"{namespace}\"");
    let wanted_alt = format!("namespace=\"{namespace}\",name=\"{name}\"");
    operator
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("keyguard_reconciles_total{"))
        .filter(|l| l.contains(&wanted) || l.contains(&wanted_alt))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
