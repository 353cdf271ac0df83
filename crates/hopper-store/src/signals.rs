//! In-process wake-ups for long-polling workers.
//!
//! A backend calls [`QueueSignals::notify`] after it commits a change that made jobs available
//! in a queue (enqueue, promotion, release, retry); a PostgreSQL backend also calls it when a
//! notification arrives from another node. A waiting lease request holds a [`Listener`] for its
//! queues and wakes at once, with no polling interval. The scheduler likewise waits on
//! [`QueueSignals::schedules_changed`], so a schedule created or resumed fires on time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hopper_types::Timestamp;
use tokio::sync::Notify;

/// One notifier per (namespace, queue), and the times at which rate-limited queues can
/// start a job again.
#[derive(Debug, Default)]
pub struct QueueSignals {
    queues: Mutex<HashMap<(String, String), Arc<Notify>>>,
    next_token: Mutex<HashMap<(String, String), Timestamp>>,
    // A schedule was created, replaced or resumed: the scheduler looks again at once.
    schedules: Notify,
}

impl QueueSignals {
    /// A registry with no listeners.
    pub fn new() -> QueueSignals {
        QueueSignals::default()
    }

    fn notifier(&self, namespace: &str, queue: &str) -> Arc<Notify> {
        let mut map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((namespace.to_string(), queue.to_string()))
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes every listener of `queue` in `namespace`.
    pub fn notify(&self, namespace: &str, queue: &str) {
        let found = {
            let map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&(namespace.to_string(), queue.to_string()))
                .cloned()
        };
        if let Some(n) = found {
            n.notify_waiters();
        }
    }

    /// Wakes every listener of every queue: after a lost notification channel, or as the slow
    /// fallback poll of a shared store, every waiting worker looks again.
    pub fn notify_all(&self) {
        let all: Vec<Arc<Notify>> = {
            let map = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        for n in all {
            n.notify_waiters();
        }
    }

    /// Records that `queue` holds jobs back until `at` (its rate's next token): a waiting
    /// worker looks again then. The latest lease's answer replaces the earlier one.
    pub fn hold_until(&self, namespace: &str, queue: &str, at: Option<Timestamp>) {
        let mut map = self.next_token.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), queue.to_string());
        match at {
            Some(t) => {
                map.insert(key, t);
            }
            None => {
                map.remove(&key);
            }
        }
    }

    /// The earliest time one of `queues` said it can start a job again, if any.
    pub fn held_until(&self, namespace: &str, queues: &[String]) -> Option<Timestamp> {
        let map = self.next_token.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .iter()
            .filter_map(|q| map.get(&(namespace.to_string(), q.clone())).copied())
            .min()
    }

    /// Tells this process's scheduler that a schedule changed, so it re-reads the next fire
    /// times at once instead of at its next bounded wake-up. A change made while the scheduler
    /// is not waiting is kept until it next waits.
    pub fn notify_schedules(&self) {
        self.schedules.notify_one();
    }

    /// Completes at the next [`QueueSignals::notify_schedules`] (or at once if one happened
    /// since the last wait).
    pub async fn schedules_changed(&self) {
        self.schedules.notified().await;
    }

    /// Registers interest in `queues` *now*: a notify that happens after this call wakes
    /// [`Listener::wait`], even if it happens before `wait` is first polled. Create the
    /// listener, then look for jobs, then wait: no wake-up can fall in between.
    pub fn listen(&self, namespace: &str, queues: &[String]) -> Listener {
        let notifiers: Vec<Arc<Notify>> =
            queues.iter().map(|q| self.notifier(namespace, q)).collect();
        Listener { notifiers }
    }
}

/// Interest in a set of queues; see [`QueueSignals::listen`].
pub struct Listener {
    notifiers: Vec<Arc<Notify>>,
}

impl Listener {
    /// Runs `f` (the attempt to find work) with wake-ups already armed, and returns its result
    /// together with a future that completes at the next notify of any listened queue.
    pub async fn wait_after<R>(
        &self,
        f: impl AsyncFnOnce() -> R,
    ) -> (R, impl Future<Output = ()> + '_) {
        let mut armed: Vec<_> = self
            .notifiers
            .iter()
            .map(|n| Box::pin(n.notified()))
            .collect();
        for n in armed.iter_mut() {
            n.as_mut().enable();
        }
        let r = f().await;
        let wait = async move {
            if armed.is_empty() {
                std::future::pending::<()>().await;
            }
            futures_select_any(armed).await;
        };
        (r, wait)
    }
}

async fn futures_select_any<F: Future<Output = ()> + Unpin>(futs: Vec<F>) {
    let mut futs = futs;
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_notify_between_look_and_wait_is_not_lost() {
        let s = Arc::new(QueueSignals::new());
        let l = s.listen("default", &["q".to_string()]);
        let s2 = s.clone();
        let (_, wait) = l.wait_after(async || s2.notify("default", "q")).await;
        tokio::time::timeout(Duration::from_secs(1), wait)
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn other_queues_do_not_wake() {
        let s = QueueSignals::new();
        let l = s.listen("default", &["q".to_string()]);
        let (_, wait) = l.wait_after(async || s.notify("default", "other")).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), wait)
                .await
                .is_err()
        );
    }
}
