//! Typed reads of a TwitterCredential's status for tests: an environment by
//! name, a condition by type, and the status as JSON for leak checks.
//!
//! The status is the operator's own `TwitterCredentialStatus`; these are
//! the look-ups tests repeat on it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use keyguard_operator::resource::EnvironmentStatus;
use keyguard_operator::TwitterCredentialStatus;

/// The conditions of a resource's status or of one environment's.
pub trait Conditions {
    fn conditions(&self) -> &[Condition];

    /// The condition of `type_`, if there is one.
    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == type_)
    }

    /// Whether a condition of `type_` has `status` (`"True"`, `"False"`).
    fn has_condition(&self, type_: &str, status: &str) -> bool {
        self.conditions()
            .iter()
            .any(|c| c.type_ == type_ && c.status == status)
    }
}

impl Conditions for TwitterCredentialStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Conditions for EnvironmentStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// Look-ups on a whole status.
pub trait StatusReads {
    /// The environment called `name`, once the operator reported it.
    fn environment(&self, name: &str) -> Option<&EnvironmentStatus>;

    /// The status serialized as the apiserver holds it: the text a leak
    /// check searches.
    fn to_json(&self) -> String;
}

impl StatusReads for TwitterCredentialStatus {
    fn environment(&self, name: &str) -> Option<&EnvironmentStatus> {
        self.environments.iter().find(|e| e.name == name)
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a status serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> TwitterCredentialStatus {
        serde_json::from_value(serde_json::json!({
            "readyEnvironments": "1/1",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Synced",
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "environments": [{"name": "prod", "revision": 2, "conditions": [
                {"type": "Synced", "status": "False", "reason": "SourceInvalid",
                 "message": "no key `apiKeySecret`", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]
        }))
        .unwrap()
    }

    #[test]
    fn environments_and_conditions_are_found_by_name_and_type() {
        let status = status();
        assert_eq!(status.condition("Ready").unwrap().reason, "Synced");
        assert!(status.has_condition("Ready", "True"));
        assert!(!status.has_condition("Ready", "False"));
        let prod = status.environment("prod").unwrap();
        assert_eq!(prod.revision, 2);
        assert_eq!(prod.condition("Synced").unwrap().reason, "SourceInvalid");
        assert!(status.environment("staging").is_none());
        assert!(prod.condition("Verified").is_none());
    }

    #[test]
    fn the_json_holds_every_field_a_leak_check_must_search() {
        let text = status().to_json();
        assert!(text.contains("no key `apiKeySecret`"), "{text}");
        assert!(text.contains("\"readyEnvironments\":\"1/1\""), "{text}");
    }
}
