//! Kubernetes Events about a TwitterCredential, one per occurrence.
//!
//! kube's `Recorder` merges Events by reason and keeps the first note, and
//! names them after the regarding object, which overflows the 253-character
//! limit for long resource names. Each rollout and refusal here is its own
//! Event with its own note, named from a truncated name and a hash.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use sha2::{Digest, Sha256};
use tracing::warn;

/// The Events API keeps notes to 1 kB.
const NOTE_MAX: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

/// Publishes Events as the operator.
#[derive(Clone)]
pub struct EventSink {
    client: Client,
    instance: String,
}

impl EventSink {
    pub fn new(client: Client) -> EventSink {
        EventSink {
            client,
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "keyguard-operator".into()),
        }
    }

    /// Records one Event regarding `about`; failures are logged, not fatal.
    pub async fn publish(
        &self,
        about: &ObjectReference,
        kind: Kind,
        reason: &str,
        action: &str,
        note: &str,
        related: Option<ObjectReference>,
    ) {
        let namespace = about.namespace.clone().unwrap_or_else(|| "default".into());
        let now = k8s_openapi::jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name(
                    about.name.as_deref().unwrap_or("keyguard"),
                    &format!("{reason}{note}{}", now.as_nanosecond()),
                )),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(bounded(note, NOTE_MAX)),
            type_: Some(match kind {
                Kind::Normal => "Normal".into(),
                Kind::Warning => "Warning".into(),
            }),
            regarding: Some(about.clone()),
            related,
            reporting_controller: Some("keyguard.dev/operator".into()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            warn!(error = %e, reason, "could not publish an Event");
        }
    }
}

/// An Event name: the regarding object's name cut to fit, and a hash of
/// what makes this occurrence unique.
pub fn event_name(regarding: &str, unique: &str) -> String {
    let hash = hex::encode(&Sha256::digest(unique.as_bytes())[..8]);
    let head: String = regarding.chars().take(253 - 1 - hash.len()).collect();
    format!("{head}.{hash}")
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_differ_per_occurrence() {
        for len in [1, 63, 200, 253] {
            let name = "a".repeat(len);
            let n = event_name(&name, "x");
            assert!(n.len() <= 253, "{len}: {}", n.len());
            assert!(n.starts_with(&name[..len.min(200)]));
            assert_ne!(n, event_name(&name, "y"));
        }
    }

    #[test]
    fn notes_are_bounded_on_character_boundaries() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(1000);
        let b = bounded(&long, NOTE_MAX);
        assert!(b.len() <= NOTE_MAX && b.ends_with("..."));
    }
}
