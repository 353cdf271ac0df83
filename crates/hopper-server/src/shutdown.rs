//! The shutdown signal shared by everything that must react when the server stops: `/readyz`
//! turns 503, waiting long polls answer empty, the maintenance services end.
//!
//! One cancellation token, cloned everywhere: cancelling is idempotent, so beginning shutdown
//! twice (a second SIGTERM, a test that stops a stopped server) does no harm.

use tokio_util::sync::CancellationToken;

/// A cheap, cloneable handle on "the server is shutting down".
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Fires the signal. Harmless when it already fired.
    pub fn begin(&self) {
        self.token.cancel();
    }

    /// True once shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when shutdown begins (at once if it already has).
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    /// A token that is cancelled with this signal, but can also be cancelled on its own (so a
    /// service can be stopped without stopping the server).
    pub fn child_token(&self) -> CancellationToken {
        self.token.child_token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn begin_is_idempotent_and_wakes_waiters() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        assert!(!s.is_shutting_down());
        s.begin();
        s.begin();
        assert!(s.is_shutting_down());
        waiter.await.expect("waiter ends");
    }
}
