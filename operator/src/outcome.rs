//! What one environment's reconcile produced: its status, whether the
//! projected content changed, what it projected from, and when it wants
//! looking at again. Sync starts it; the later stages add to it.

use crate::projection::Data;
use crate::resource::EnvironmentStatus;
use crate::wake::WakeUp;

/// What one environment's sync produced.
#[derive(Debug, Clone)]
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
