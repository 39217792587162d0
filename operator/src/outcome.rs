//! What one environment's reconcile produced: its status, whether the
//! projected content changed, what it projected from, and when it wants
//! looking at again. Sync starts it; the later stages add to it.

use crate::projection::Data;
use crate::resource::EnvironmentStatus;
use crate::wake::WakeUp;

/// What one environment's sync produced.
#[derive(Clone)]
pub struct EnvOutcome {
    pub status: EnvironmentStatus,
    /// The projected content changed in this reconcile, over an earlier one.
    pub changed: bool,
    /// When to look again.
    pub wake: WakeUp,
    /// The source values this sync projected from (when it synced), so
    /// what follows in the reconcile works from exactly those, not from a
    /// source a person may have changed since.
    pub projected_from: Option<Data>,
}

/// By hand: the source values never reach a log or a panic message, only
/// their keys.
impl std::fmt::Debug for EnvOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |d: &Data| d.keys().cloned().collect::<Vec<_>>();
        f.debug_struct("EnvOutcome")
            .field("status", &self.status)
            .field("changed", &self.changed)
            .field("wake", &self.wake)
            .field("projected_from", &self.projected_from.as_ref().map(keys))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_debug_names_the_source_keys_and_never_their_values() {
        let value = b"AAAAAAAAAAAAAAAAAAAAAsecretBearerValue0123456789".to_vec();
        let outcome = EnvOutcome {
            status: EnvironmentStatus::default(),
            changed: true,
            wake: WakeUp::default(),
            projected_from: Some(Data::from([("bearerToken".to_string(), value.clone())])),
        };
        let shown = format!("{outcome:?} {outcome:#?}");
        assert!(shown.contains("bearerToken"), "{shown}");
        let text = String::from_utf8(value).unwrap();
        assert!(!shown.contains(&text), "{shown}");
        let bytes = format!("{:?}", text.as_bytes());
        assert!(!shown.contains(bytes.trim_matches(['[', ']'])), "{shown}");
    }
}
