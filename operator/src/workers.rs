//! The reconcile queue's bound, fair between tenants: at most `n`
//! reconciles run at once, and when a slot frees the namespaces with
//! reconciles waiting take turns (round robin), each namespace's own in
//! arrival order. One namespace holds at most all but an eighth of the
//! slots ([`per_namespace_cap`]), so a namespace that changes 5,000
//! resources at once leaves another's single change a free slot, or at
//! worst a wait of one turn, not of its 5,000. Two gauges say how many
//! wait and how many run (the backlog alert reads the first). The
//! controller already holds at most one pending reconcile per resource,
//! so a flood of changes to one resource takes one place in its
//! namespace's queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// The slots reconciles take turns on.
#[derive(Debug)]
pub struct Workers {
    queue: Arc<Mutex<Queue>>,
}

/// A running reconcile's slot; counted while held, handed on when dropped.
pub struct Slot {
    _turn: Turn,
    metrics: Metrics,
}

/// The right to run, held by `namespace`; dropping it hands the slot to
/// the next waiter.
#[derive(Debug)]
pub struct Turn {
    queue: Option<Arc<Mutex<Queue>>>,
    namespace: String,
}

/// Counts a waiting reconcile, also when its wait is cancelled.
struct Waiting(Metrics);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.reconcile_dequeued();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.reconcile_finished();
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            hand_on(&queue, &self.namespace);
        }
    }
}

/// Takes the slot `from` held back, and gives it to the next waiter still
/// waiting whose namespace is under its cap, or keeps it free.
fn hand_on(queue: &Arc<Mutex<Queue>>, from: &str) {
    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
    q.release(from);
    while let Some((namespace, waiter)) = q.next_waiter() {
        let turn = Turn {
            queue: Some(queue.clone()),
            namespace,
        };
        match waiter.send(turn) {
            Ok(()) => return,
            // Its wait was cancelled: disarm the returned turn (handing on
            // from inside the lock would deadlock) and try the next one.
            Err(mut turn) => {
                turn.queue = None;
                q.release(&turn.namespace);
            }
        }
    }
    q.free += 1;
}

/// Pure: the most slots of `n` one namespace may hold at once. An eighth
/// (at least one, when there are four or more) is kept for the others: when
/// one namespace changes thousands of resources at once, every slot it
/// holds is slow to free (they all wait on the same busy apiserver), and
/// another namespace's single change would wait for the first of them.
pub fn per_namespace_cap(n: usize) -> usize {
    let n = n.max(1);
    let kept = if n >= 4 { (n / 8).max(1) } else { 0 };
    n - kept
}

/// Free slots, who holds them and who waits for one, by namespace. The
/// decisions are pure (no locking, no channels inside):
/// [`Queue::take_free`] and [`Queue::next_waiter`] are table-tested.
#[derive(Debug)]
struct Queue<W = oneshot::Sender<Turn>> {
    free: usize,
    /// The most slots one namespace holds ([`per_namespace_cap`]).
    cap: usize,
    held: HashMap<String, usize>,
    waiting: HashMap<String, VecDeque<W>>,
    /// Namespaces with someone waiting, in the order they get their turn.
    turns: VecDeque<String>,
}

impl<W> Default for Queue<W> {
    fn default() -> Self {
        Queue {
            free: 0,
            cap: usize::MAX,
            held: HashMap::new(),
            waiting: HashMap::new(),
            turns: VecDeque::new(),
        }
    }
}

impl<W> Queue<W> {
    fn push(&mut self, namespace: &str, waiter: W) {
        match self.waiting.get_mut(namespace) {
            Some(waiters) => waiters.push_back(waiter),
            None => {
                self.waiting
                    .insert(namespace.to_string(), VecDeque::from([waiter]));
                self.turns.push_back(namespace.to_string());
            }
        }
    }

    fn held_by(&self, namespace: &str) -> usize {
        self.held.get(namespace).copied().unwrap_or(0)
    }

    fn hold(&mut self, namespace: &str) {
        *self.held.entry(namespace.to_string()).or_default() += 1;
    }

    fn release(&mut self, namespace: &str) {
        if let Some(held) = self.held.get_mut(namespace) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(namespace);
            }
        }
    }

    /// Pure: takes a free slot for `namespace` at once, if one is free and
    /// the namespace is under its cap.
    fn take_free(&mut self, namespace: &str) -> bool {
        let can = self.free > 0 && self.held_by(namespace) < self.cap;
        if can {
            self.free -= 1;
            self.hold(namespace);
        }
        can
    }

    /// Pure: the first waiter of the first namespace in line that is under
    /// its cap (those at their cap keep their place); that namespace goes
    /// to the back of the line if it has more waiting.
    fn next_waiter(&mut self) -> Option<(String, W)> {
        let position = self.turns.iter().position(|n| self.held_by(n) < self.cap)?;
        let namespace = self.turns.remove(position)?;
        let waiters = self.waiting.get_mut(&namespace)?;
        let waiter = waiters.pop_front()?;
        if waiters.is_empty() {
            self.waiting.remove(&namespace);
        } else {
            self.turns.push_back(namespace.clone());
        }
        self.hold(&namespace);
        Some((namespace, waiter))
    }
}

impl Workers {
    pub fn new(n: usize) -> Self {
        let queue = Queue {
            free: n.max(1),
            cap: per_namespace_cap(n),
            ..Default::default()
        };
        Workers {
            queue: Arc::new(Mutex::new(queue)),
        }
    }

    /// Waits for a slot: at once if one is free, else at `namespace`'s turn.
    pub async fn slot(&self, namespace: &str, metrics: &Metrics) -> Slot {
        metrics.reconcile_queued();
        let waiting = Waiting(metrics.clone());
        let turn = self.turn(namespace).await;
        drop(waiting);
        metrics.reconcile_started();
        Slot {
            _turn: turn,
            metrics: metrics.clone(),
        }
    }

    /// Waits for `namespace`'s turn at a slot, uncounted (the apiserver
    /// requests' turns, `apiserver_turns.rs`, use the same queue).
    pub async fn turn(&self, namespace: &str) -> Turn {
        let rx = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.take_free(namespace) {
                return Turn {
                    queue: Some(self.queue.clone()),
                    namespace: namespace.to_string(),
                };
            }
            let (tx, rx) = oneshot::channel();
            q.push(namespace, tx);
            rx
        };
        // Senders go unsent only when the queue itself is dropped, i.e. at
        // shutdown: then there is nothing left to take turns on.
        rx.await.unwrap_or(Turn {
            queue: None,
            namespace: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(metrics: &Metrics, name: &str) -> i64 {
        let text = metrics.render();
        let line = text
            .lines()
            .find(|l| l.starts_with(name) && !l.starts_with(&format!("{name}_")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn namespaces_take_turns_and_each_keeps_its_own_order() {
        type Case<'a> = (&'a str, &'a [(&'a str, u32)], &'a [u32]);
        let cases: [Case; 4] = [
            ("nobody waits", &[], &[]),
            (
                "one namespace: arrival order",
                &[("a", 1), ("a", 2), ("a", 3)],
                &[1, 2, 3],
            ),
            (
                "a flood in one namespace does not hold back another's single change",
                &[
                    ("flood", 1),
                    ("flood", 2),
                    ("flood", 3),
                    ("flood", 4),
                    ("quiet", 9),
                ],
                &[1, 9, 2, 3, 4],
            ),
            (
                "three namespaces round robin, in the order they first waited",
                &[("a", 1), ("a", 2), ("b", 3), ("c", 4), ("b", 5), ("a", 6)],
                &[1, 3, 4, 2, 5, 6],
            ),
        ];
        for (what, pushed, want) in cases {
            let mut q: Queue<u32> = Queue::default();
            for (namespace, waiter) in pushed {
                q.push(namespace, *waiter);
            }
            let order: Vec<u32> = std::iter::from_fn(|| q.next_waiter().map(|(_, w)| w)).collect();
            assert_eq!(order, want, "{what}");
            assert!(
                q.waiting.is_empty() && q.turns.is_empty(),
                "{what}: drained"
            );
        }
    }

    #[test]
    fn a_namespace_that_empties_and_waits_again_goes_to_the_back() {
        let mut q: Queue<u32> = Queue::default();
        q.push("a", 1);
        q.push("b", 2);
        assert_eq!(q.next_waiter(), Some(("a".to_string(), 1)));
        q.push("a", 3);
        q.push("c", 4);
        let order: Vec<u32> = std::iter::from_fn(|| q.next_waiter().map(|(_, w)| w)).collect();
        assert_eq!(order, [2, 3, 4]);
    }

    /// Whether `slot` is granted within 5 s (a lost slot never is).
    async fn comes_soon(slot: impl std::future::Future<Output = Slot>) -> bool {
        tokio::time::timeout(std::time::Duration::from_secs(5), slot)
            .await
            .is_ok()
    }

    #[test]
    fn one_namespace_leaves_an_eighth_of_the_slots_to_the_others() {
        let cases = [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 3),
            (7, 6),
            (8, 7),
            (16, 14),
            (32, 28),
        ];
        for (n, cap) in cases {
            assert_eq!(per_namespace_cap(n), cap, "{n} slots");
        }
    }

    #[test]
    fn a_namespace_at_its_cap_keeps_its_place_while_others_go() {
        let mut q: Queue<u32> = Queue {
            free: 2,
            cap: 1,
            ..Default::default()
        };
        assert!(q.take_free("flood"));
        assert!(!q.take_free("flood"), "at its cap, with a slot still free");
        q.push("flood", 1);
        q.push("quiet", 2);
        assert_eq!(q.next_waiter(), Some(("quiet".to_string(), 2)));
        assert_eq!(q.next_waiter(), None, "the flood is at its cap");
        q.release("flood");
        assert_eq!(q.next_waiter(), Some(("flood".to_string(), 1)));
        assert!(q.waiting.is_empty() && q.turns.is_empty());
        assert_eq!((q.held_by("flood"), q.held_by("quiet")), (1, 1));
    }

    #[tokio::test]
    async fn a_flood_leaves_a_slot_free_for_another_namespace() {
        let metrics = Metrics::default();
        let workers = Workers::new(8);
        let mut flood = Vec::new();
        for _ in 0..7 {
            flood.push(workers.slot("flood", &metrics).await);
        }
        let mut eighth = Box::pin(workers.slot("flood", &metrics));
        assert!(
            futures::poll!(eighth.as_mut()).is_pending(),
            "at its cap, the flood waits for one of its own though a slot is free"
        );
        drop(flood.pop());
        assert!(
            comes_soon(eighth).await,
            "the flood's freed slot went to its waiter"
        );
        assert!(
            comes_soon(workers.slot("quiet", &metrics)).await,
            "the quiet namespace found the slot kept free"
        );
    }

    #[tokio::test]
    async fn at_most_n_run_the_rest_wait_their_turn_and_are_counted() {
        let metrics = Metrics::default();
        let workers = Arc::new(Workers::new(2));
        let a = workers.slot("flood", &metrics).await;
        let _b = workers.slot("other", &metrics).await;
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for (i, namespace) in ["flood", "flood", "flood", "quiet"].into_iter().enumerate() {
            let (w, m, tx) = (workers.clone(), metrics.clone(), order_tx.clone());
            waiting.push(tokio::spawn(async move {
                let _slot = w.slot(namespace, &m).await;
                tx.send(i).unwrap();
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(gauge(&metrics, "keyguard_reconciles_running"), 2);
        assert_eq!(gauge(&metrics, "keyguard_reconcile_queue_depth"), 4);
        let cancelled = waiting.remove(0);
        cancelled.abort();
        let _ = cancelled.await;
        assert_eq!(
            gauge(&metrics, "keyguard_reconcile_queue_depth"),
            3,
            "a cancelled wait leaves the queue"
        );
        drop(a);
        for w in waiting {
            w.await.unwrap();
        }
        let got: Vec<usize> = std::iter::from_fn(|| order.try_recv().ok()).collect();
        assert_eq!(
            got,
            [3, 1, 2],
            "the cancelled waiter used up its namespace's turn; the quiet namespace's single wait comes next, not after the flood"
        );
        assert_eq!(gauge(&metrics, "keyguard_reconcile_queue_depth"), 0);
        assert_eq!(gauge(&metrics, "keyguard_reconciles_running"), 1);
    }

    #[tokio::test]
    async fn a_slot_handed_to_a_cancelled_waiter_is_not_lost() {
        let metrics = Metrics::default();
        let workers = Workers::new(1);
        let held = workers.slot("a", &metrics).await;
        let mut cancelled = Box::pin(workers.slot("a", &metrics));
        assert!(futures::poll!(cancelled.as_mut()).is_pending());
        // The slot is sent to the waiter, which is dropped before it reads it.
        drop(held);
        drop(cancelled);
        assert!(
            comes_soon(workers.slot("b", &metrics)).await,
            "the slot came back when the turn was dropped"
        );
    }
}
