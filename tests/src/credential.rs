//! A typed builder for the TwitterCredentials tests declare.
//!
//! It builds the operator's own `TwitterCredential`, so a schema change
//! breaks the tests at compile time rather than at the apiserver.
//!
//! ```
//! use keyguard_tests::credential::{rotation, Credential, CredentialKey::BearerToken, Env};
//!
//! let bot = Credential::named("bot").environment(
//!     Env::new("prod")
//!         .source("keys")
//!         .target("out")
//!         .keys([BearerToken])
//!         .rotation(rotation().bearer_every("720h")),
//! );
//! let resource: keyguard_operator::TwitterCredential = bot.into();
//! assert_eq!(resource.spec.environments[0].target.secret_name, "out");
//! ```
//!
//! Only what a test sets is serialized (the operator's types skip unset
//! fields), so a built resource is the JSON a person would write by hand.
//! Two exceptions, both the CRD's defaults: an `access` always carries its
//! `permission` (`read` unless set), and a `monitoring.usage` its
//! `warnAtPercent`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use keyguard_operator::resource::{
    Access, AccessReview, Environment, MaxAge, Monitoring, Rotation, Schedule, SecretRef,
    ServiceAccountName, Source, Target, UsageMonitoring, UserTokenRotation, WorkloadRef,
};
use keyguard_operator::{TwitterCredential, TwitterCredentialSpec};

pub use keyguard_credentials::CredentialKey;
pub use keyguard_operator::resource::{DeletionPolicy, Permission, WorkloadKind};

/// A TwitterCredential being declared: [`Credential::named`], then its
/// environments and resource-wide settings. Turns into the operator's
/// `TwitterCredential` with `.into()` (or [`Credential::build`]).
#[derive(Clone, Debug)]
pub struct Credential {
    resource: TwitterCredential,
}

impl Credential {
    /// A resource called `name`, with no environment yet.
    pub fn named(name: &str) -> Credential {
        let spec = TwitterCredentialSpec {
            environments: Vec::new(),
            deletion_policy: None,
            monitoring: None,
            access_review: None,
            service_account_name: None,
        };
        Credential {
            resource: TwitterCredential::new(name, spec),
        }
    }

    /// `metadata.namespace`, for a resource written without a namespaced
    /// API (kubectl reads it from the object).
    pub fn in_namespace(mut self, namespace: &str) -> Credential {
        self.resource.metadata.namespace = Some(namespace.to_string());
        self
    }

    /// Adds an environment (after those added before).
    pub fn environment(mut self, environment: Env) -> Credential {
        self.resource.spec.environments.push(environment.into());
        self
    }

    /// Adds environments, in order.
    pub fn environments(self, environments: impl IntoIterator<Item = Env>) -> Credential {
        environments
            .into_iter()
            .fold(self, |resource, env| resource.environment(env))
    }

    /// `deletionPolicy`.
    pub fn deletion_policy(mut self, policy: DeletionPolicy) -> Credential {
        self.resource.spec.deletion_policy = Some(policy);
        self
    }

    /// `monitoring.usage`: poll every `every`, warn at `warn_at_percent`.
    pub fn usage_monitoring(mut self, every: &str, warn_at_percent: u8) -> Credential {
        self.resource.spec.monitoring = Some(Monitoring {
            usage: Some(UsageMonitoring {
                every: every.to_string(),
                warn_at_percent,
            }),
        });
        self
    }

    /// `accessReview`: every `every`, last done at `last_reviewed` by
    /// `reviewed_by` (each unset when `None`).
    pub fn access_review(
        mut self,
        every: &str,
        last_reviewed: Option<k8s_openapi::jiff::Timestamp>,
        reviewed_by: Option<&str>,
    ) -> Credential {
        self.resource.spec.access_review = Some(AccessReview {
            every: every.to_string(),
            last_reviewed: last_reviewed.map(Time),
            reviewed_by: reviewed_by.map(str::to_string),
        });
        self
    }

    /// `serviceAccountName`: the ServiceAccount the resource is held to.
    pub fn service_account_name(mut self, name: &str) -> Credential {
        self.resource.spec.service_account_name = Some(ServiceAccountName(name.to_string()));
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Credential {
        insert(&mut self.resource.metadata.annotations, key, value);
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Credential {
        insert(&mut self.resource.metadata.labels, key, value);
        self
    }

    /// The operator's `TwitterCredential`.
    pub fn build(self) -> TwitterCredential {
        self.resource
    }
}

impl From<Credential> for TwitterCredential {
    fn from(credential: Credential) -> TwitterCredential {
        credential.build()
    }
}

fn insert(map: &mut Option<BTreeMap<String, String>>, key: &str, value: &str) {
    map.get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), value.to_string());
}

/// One environment: [`Env::new`], then at least [`Env::source`],
/// [`Env::target`] and [`Env::keys`].
#[derive(Clone, Debug)]
pub struct Env {
    environment: Environment,
}

impl Env {
    /// An environment called `name`; its source, target and keys are still
    /// to be set.
    pub fn new(name: &str) -> Env {
        Env {
            environment: Environment {
                name: name.to_string(),
                source: Source {
                    secret_ref: SecretRef {
                        name: String::new(),
                    },
                },
                target: Target {
                    namespace: None,
                    secret_name: String::new(),
                    keys: Vec::new(),
                },
                access: None,
                rotation: None,
                restart_targets: Vec::new(),
                allow_shared_credentials: false,
            },
        }
    }

    /// `source.secretRef.name`: the Secret in the resource's namespace.
    pub fn source(mut self, secret: &str) -> Env {
        self.environment.source.secret_ref.name = secret.to_string();
        self
    }

    /// `target.secretName`.
    pub fn target(mut self, secret: &str) -> Env {
        self.environment.target.secret_name = secret.to_string();
        self
    }

    /// `target.namespace` (unset: the resource's own).
    pub fn target_namespace(mut self, namespace: &str) -> Env {
        self.environment.target.namespace = Some(namespace.to_string());
        self
    }

    /// `target.keys`, in this order.
    pub fn keys(mut self, keys: impl IntoIterator<Item = CredentialKey>) -> Env {
        self.environment.target.keys = keys.into_iter().collect();
        self
    }

    /// `access.permission`.
    pub fn permission(mut self, permission: Permission) -> Env {
        self.access().permission = permission;
        self
    }

    /// `access.serviceAccounts`, replacing any set before.
    pub fn service_accounts(mut self, names: impl IntoIterator<Item = impl AsRef<str>>) -> Env {
        self.access().service_accounts = names
            .into_iter()
            .map(|n| ServiceAccountName(n.as_ref().to_string()))
            .collect();
        self
    }

    fn access(&mut self) -> &mut Access {
        self.environment.access.get_or_insert_with(|| Access {
            permission: Permission::default(),
            service_accounts: Vec::new(),
        })
    }

    /// `rotation` (a [`Rotate`], or an `Option` of one: `None` leaves it
    /// out).
    pub fn rotation(mut self, rotation: impl Into<Option<Rotate>>) -> Env {
        self.environment.rotation = rotation.into().map(|r| r.rotation);
        self
    }

    /// Adds a `restartTargets` entry.
    pub fn restart(mut self, kind: WorkloadKind, name: &str) -> Env {
        self.environment.restart_targets.push(WorkloadRef {
            kind,
            name: name.to_string(),
        });
        self
    }

    /// `allowSharedCredentials`.
    pub fn allow_shared_credentials(mut self, allow: bool) -> Env {
        self.environment.allow_shared_credentials = allow;
        self
    }
}

impl From<Env> for Environment {
    /// Panics if the source, the target Secret or the keys were not set:
    /// a test that forgot one would otherwise only learn it from the
    /// apiserver's refusal.
    fn from(env: Env) -> Environment {
        let e = env.environment;
        assert!(
            !e.source.secret_ref.name.is_empty(),
            "environment {} has no source",
            e.name
        );
        assert!(
            !e.target.secret_name.is_empty(),
            "environment {} has no target",
            e.name
        );
        assert!(
            !e.target.keys.is_empty(),
            "environment {} has no keys",
            e.name
        );
        e
    }
}

/// An environment's `rotation`, from [`rotation`] on.
#[derive(Clone, Debug)]
pub struct Rotate {
    rotation: Rotation,
}

/// An empty `rotation` (`{}`), to which rules are added.
pub fn rotation() -> Rotate {
    Rotate {
        rotation: Rotation {
            bearer_token: None,
            user_token: None,
            consumer_keys: None,
            access_tokens: None,
            grace_period: None,
        },
    }
}

impl Rotate {
    /// `bearerToken.every`.
    pub fn bearer_every(mut self, every: &str) -> Rotate {
        self.rotation.bearer_token = Some(Schedule {
            every: Some(every.to_string()),
            schedule: None,
        });
        self
    }

    /// `bearerToken.schedule`: a cron expression.
    pub fn bearer_on(mut self, cron: &str) -> Rotate {
        self.rotation.bearer_token = Some(Schedule {
            every: None,
            schedule: Some(cron.to_string()),
        });
        self
    }

    /// `userToken.refreshBefore`.
    pub fn refresh_before(mut self, before: &str) -> Rotate {
        self.rotation.user_token = Some(UserTokenRotation {
            refresh_before: before.to_string(),
        });
        self
    }

    /// `consumerKeys.maxAge`.
    pub fn consumer_keys_max_age(mut self, max_age: &str) -> Rotate {
        self.rotation.consumer_keys = Some(MaxAge {
            max_age: max_age.to_string(),
        });
        self
    }

    /// `accessTokens.maxAge`.
    pub fn access_tokens_max_age(mut self, max_age: &str) -> Rotate {
        self.rotation.access_tokens = Some(MaxAge {
            max_age: max_age.to_string(),
        });
        self
    }

    /// `gracePeriod`.
    pub fn grace_period(mut self, period: &str) -> Rotate {
        self.rotation.grace_period = Some(period.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::CredentialKey::{AccessToken, ApiKey, BearerToken};
    use super::*;
    use serde_json::json;

    fn json_of(credential: Credential) -> serde_json::Value {
        serde_json::to_value(credential.build()).unwrap()
    }

    #[test]
    fn a_minimal_resource_is_the_json_tests_wrote_by_hand() {
        let built = json_of(
            Credential::named("bot").environment(
                Env::new("dev")
                    .source("partial")
                    .target("out")
                    .keys([BearerToken]),
            ),
        );
        assert_eq!(
            built,
            json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
                "metadata": {"name": "bot"}, "spec": {"environments": [
                {"name": "dev", "source": {"secretRef": {"name": "partial"}},
                 "target": {"secretName": "out", "keys": ["bearerToken"]}}]}})
        );
    }

    #[test]
    fn every_setting_lands_where_the_crd_has_it() {
        let reviewed: k8s_openapi::jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let built = json_of(
            Credential::named("bot")
                .in_namespace("team")
                .annotation("team/note", "x")
                .label("app", "bot")
                .deletion_policy(DeletionPolicy::Retain)
                .usage_monitoring("1h", 90)
                .access_review("24h", Some(reviewed), Some("alice"))
                .service_account_name("keyguard-bot")
                .environments([
                    Env::new("production")
                        .source("bot-keys")
                        .target_namespace("prod")
                        .target("twitter-credentials")
                        .keys([BearerToken, AccessToken])
                        .permission(Permission::Read)
                        .service_accounts(["reader"])
                        .rotation(rotation().bearer_every("720h").refresh_before("15m"))
                        .restart(WorkloadKind::Deployment, "bot"),
                    Env::new("staging")
                        .source("bot-keys")
                        .target("staging-out")
                        .keys([ApiKey])
                        .allow_shared_credentials(true)
                        .rotation(
                            rotation()
                                .bearer_on("0 3 * * *")
                                .consumer_keys_max_age("1h")
                                .access_tokens_max_age("2h")
                                .grace_period("6s"),
                        ),
                ]),
        );
        assert_eq!(
            built,
            json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": "bot", "namespace": "team",
                "annotations": {"team/note": "x"}, "labels": {"app": "bot"}},
            "spec": {
                "deletionPolicy": "Retain",
                "monitoring": {"usage": {"every": "1h", "warnAtPercent": 90}},
                "accessReview": {"every": "24h", "lastReviewed": "2026-12-01T00:00:00Z", "reviewedBy": "alice"},
                "serviceAccountName": "keyguard-bot",
                "environments": [{
                    "name": "production",
                    "source": {"secretRef": {"name": "bot-keys"}},
                    "target": {"namespace": "prod", "secretName": "twitter-credentials", "keys": ["bearerToken", "accessToken"]},
                    "access": {"permission": "read", "serviceAccounts": ["reader"]},
                    "rotation": {"bearerToken": {"every": "720h"}, "userToken": {"refreshBefore": "15m"}},
                    "restartTargets": [{"kind": "Deployment", "name": "bot"}]
                }, {
                    "name": "staging",
                    "source": {"secretRef": {"name": "bot-keys"}},
                    "target": {"secretName": "staging-out", "keys": ["apiKey"]},
                    "rotation": {"bearerToken": {"schedule": "0 3 * * *"},
                        "consumerKeys": {"maxAge": "1h"}, "accessTokens": {"maxAge": "2h"},
                        "gracePeriod": "6s"},
                    "allowSharedCredentials": true
                }]
            }})
        );
    }

    /// What differs from a hand-written resource, and why it is the same
    /// to the apiserver: `permission` is the CRD's default, an empty
    /// `rotation` is kept, and `allowSharedCredentials: false` is left out
    /// (the operator reads its absence as false).
    #[test]
    fn the_few_differences_from_hand_written_json_are_the_crd_s_defaults() {
        let built = json_of(
            Credential::named("bot").environment(
                Env::new("a")
                    .source("keys")
                    .target("a-out")
                    .keys([AccessToken])
                    .service_accounts(["app"])
                    .rotation(rotation())
                    .allow_shared_credentials(false),
            ),
        );
        assert_eq!(
            built["spec"]["environments"][0],
            json!({"name": "a", "source": {"secretRef": {"name": "keys"}},
                "target": {"secretName": "a-out", "keys": ["accessToken"]},
                "access": {"permission": "read", "serviceAccounts": ["app"]},
                "rotation": {}})
        );
    }

    #[test]
    #[should_panic(expected = "environment prod has no source")]
    fn an_environment_without_a_source_is_caught_before_the_apiserver() {
        let _ = Credential::named("bot").environment(Env::new("prod").target("out").keys([ApiKey]));
    }
}
