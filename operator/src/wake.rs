//! When a resource wants looking at again. Every stage of a reconcile says
//! so in one type, and one pure function turns what they said into the
//! requeue delay.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::schedule::until;

/// What one stage asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Nothing owed: the regular resync.
    Resync,
    /// A transient failure: soon, rather than at the resync.
    Soon,
    /// Not before X's rate-limit window resets: nothing sooner helps.
    RateLimited(Duration),
    /// After this long (a debounced restart).
    After(Duration),
    /// At this time (a rotation, a reminder, a verification, a retirement).
    At(Timestamp),
}

/// What every stage of a reconcile asked for, folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WakeUp {
    soon: bool,
    rate_limited: Option<Duration>,
    after: Option<Duration>,
    at: Option<Timestamp>,
}

impl WakeUp {
    pub fn of(wake: Wake) -> WakeUp {
        let mut w = WakeUp::default();
        w.add(wake);
        w
    }

    /// At `at`, when there is a time.
    pub fn of_at(at: Option<Timestamp>) -> WakeUp {
        let mut w = WakeUp::default();
        w.add_opt(at.map(Wake::At));
        w
    }

    /// Adds one stage's wish; the earliest of each kind wins.
    pub fn add(&mut self, wake: Wake) {
        fn earliest<T: Ord + Copy>(a: Option<T>, b: T) -> Option<T> {
            Some(a.map_or(b, |a| a.min(b)))
        }
        match wake {
            Wake::Resync => {}
            Wake::Soon => self.soon = true,
            Wake::RateLimited(d) => self.rate_limited = earliest(self.rate_limited, d),
            Wake::After(d) => self.after = earliest(self.after, d),
            Wake::At(t) => self.at = earliest(self.at, t),
        }
    }

    /// Adds `wake` when there is one.
    pub fn add_opt(&mut self, wake: Option<Wake>) {
        if let Some(w) = wake {
            self.add(w);
        }
    }

    /// Adds everything another fold asked for.
    pub fn merge(&mut self, other: WakeUp) {
        if other.soon {
            self.add(Wake::Soon);
        }
        let wakes = [
            other.rate_limited.map(Wake::RateLimited),
            other.after.map(Wake::After),
            other.at.map(Wake::At),
        ];
        for w in wakes.into_iter().flatten() {
            self.add(w);
        }
    }

    /// Whether a stage failed transiently.
    pub fn soon(&self) -> bool {
        self.soon
    }

    /// Pure: how long to wait. A rate limit overrides "soon" (nothing
    /// sooner than X's reset helps), "soon" overrides the resync, and a
    /// debounced restart or a due time comes earlier when it is earlier; a
    /// due time is at least a second away, so a rotation that just came due
    /// is not retried in a tight loop while it fails.
    pub fn delay(&self, now: Timestamp, soon: Duration, resync: Duration) -> Duration {
        let mut next = match (self.rate_limited, self.soon) {
            (Some(reset), _) => reset.max(Duration::from_secs(1)),
            (None, true) => soon,
            (None, false) => resync,
        };
        if let Some(after) = self.after {
            next = next.min(after);
        }
        if let Some(at) = self.at {
            next = next.min(until(at, now).max(Duration::from_secs(1)));
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_follows_what_the_stages_asked_for() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let secs = Duration::from_secs;
        let at = |s: i64| Wake::At(now + k8s_openapi::jiff::SignedDuration::from_secs(s));
        let (soon, resync) = (secs(30), secs(600));
        let cases: [(&str, &[Wake], u64); 11] = [
            ("nothing: the resync", &[], 600),
            ("resync only", &[Wake::Resync], 600),
            ("a transient failure", &[Wake::Soon], 30),
            (
                "a rate limit overrides soon",
                &[Wake::Soon, Wake::RateLimited(secs(120))],
                120,
            ),
            (
                "the earliest reset",
                &[Wake::RateLimited(secs(120)), Wake::RateLimited(secs(90))],
                90,
            ),
            (
                "a reset already past waits a second",
                &[Wake::RateLimited(Duration::ZERO)],
                1,
            ),
            ("a due time before the resync", &[at(100)], 100),
            ("a due time past waits a second", &[at(-5)], 1),
            ("a due time after the resync", &[at(5000)], 600),
            (
                "a debounced restart",
                &[Wake::Soon, Wake::After(secs(3))],
                3,
            ),
            (
                "a due time earlier than soon",
                &[Wake::Soon, at(10), Wake::After(secs(20))],
                10,
            ),
        ];
        for (what, wakes, want) in cases {
            let mut w = WakeUp::default();
            for &wake in wakes {
                w.add(wake);
            }
            assert_eq!(w.delay(now, soon, resync), secs(want), "{what}");
            let mut merged = WakeUp::default();
            merged.merge(w);
            assert_eq!(merged, w, "{what}: merging into nothing changes nothing");
        }
    }
}
