//! The reconcile queue's bound: at most `n` reconciles run at once; the
//! rest wait their turn in arrival order (tokio's semaphore is fair), and
//! two gauges say how many wait and how many run. The controller already
//! holds at most one pending reconcile per resource, so a flood of changes
//! to one resource takes one place in the queue, never the others' turns.

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::metrics::Metrics;

/// The slots reconciles take turns on.
#[derive(Debug)]
pub struct Workers {
    slots: Semaphore,
}

/// A running reconcile's slot; counted while held.
pub struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    metrics: Metrics,
}

/// Counts a waiting reconcile, also when its wait is cancelled.
struct Waiting(Metrics);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.reconcile_dequeued();
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.metrics.reconcile_finished();
    }
}

impl Workers {
    pub fn new(n: usize) -> Self {
        Workers {
            slots: Semaphore::new(n.max(1)),
        }
    }

    /// Waits for a free slot, in arrival order.
    pub async fn slot(&self, metrics: &Metrics) -> Slot<'_> {
        metrics.reconcile_queued();
        let waiting = Waiting(metrics.clone());
        let permit = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        drop(waiting);
        metrics.reconcile_started();
        Slot {
            _permit: permit,
            metrics: metrics.clone(),
        }
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

    #[tokio::test]
    async fn at_most_n_run_the_rest_wait_in_order_and_are_counted() {
        let metrics = Metrics::default();
        let workers = std::sync::Arc::new(Workers::new(2));
        let a = workers.slot(&metrics).await;
        let _b = workers.slot(&metrics).await;
        let (order_tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (w, m, tx) = (workers.clone(), metrics.clone(), order_tx.clone());
            waiting.push(tokio::spawn(async move {
                let _slot = w.slot(&m).await;
                tx.send(i).unwrap();
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(gauge(&metrics, "keyguard_reconciles_running"), 2);
        assert_eq!(gauge(&metrics, "keyguard_reconcile_queue_depth"), 3);
        let cancelled = waiting.remove(2);
        cancelled.abort();
        let _ = cancelled.await;
        assert_eq!(
            gauge(&metrics, "keyguard_reconcile_queue_depth"),
            2,
            "a cancelled wait leaves the queue"
        );
        drop(a);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(
            [order.recv().await, order.recv().await],
            [Some(0), Some(1)],
            "arrival order"
        );
        assert_eq!(gauge(&metrics, "keyguard_reconcile_queue_depth"), 0);
        assert_eq!(gauge(&metrics, "keyguard_reconciles_running"), 1);
    }
}
