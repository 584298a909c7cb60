//! Waiting for a condition that becomes true later: one polling loop, for a plain check and for
//! a check that needs I/O.

use std::time::{Duration, Instant};

/// How often the condition is checked.
const POLL: Duration = Duration::from_millis(20);

/// What a probe of [`eventually`] / [`eventually_async`] returns: `bool` (done when `true`) or
/// `Option<T>` (done when `Some`, the value handed back).
pub trait Outcome {
    /// Whether the awaited state was reached.
    fn done(&self) -> bool;
}

impl Outcome for bool {
    fn done(&self) -> bool {
        *self
    }
}

impl<T> Outcome for Option<T> {
    fn done(&self) -> bool {
        self.is_some()
    }
}

/// Checks `probe` every 20 ms until it is done or `within` passes, then returns its last answer
/// (checked once more at the deadline).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let ready = fastapihooks_testkit::eventually(Duration::from_secs(5), || {
///     start.elapsed() > Duration::from_millis(50)
/// })
/// .await;
/// assert!(ready);
/// # }
/// ```
pub async fn eventually<T: Outcome>(within: Duration, mut probe: impl FnMut() -> T) -> T {
    let start = Instant::now();
    while start.elapsed() < within {
        let outcome = probe();
        if outcome.done() {
            return outcome;
        }
        tokio::time::sleep(POLL).await;
    }
    probe()
}

/// Like [`eventually`], for a probe that needs I/O (`|| async { .. }` or `async || ..`).
///
/// With an `Option` probe it hands back the value, e.g. waiting for a store to reach a state:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use fastapihooks_core::{MemoryStore, Store, Subscription};
///
/// let store = MemoryStore::new();
/// let sub = Subscription::new("*", "https://example.com/hooks").unwrap();
/// store.add_subscription(sub.clone()).await.unwrap();
/// let found = fastapihooks_testkit::eventually_async(Duration::from_secs(5), async || {
///     store.get_subscription(&sub.id).await.unwrap()
/// })
/// .await
/// .expect("the subscription is stored");
/// assert_eq!(found.id, sub.id);
/// # }
/// ```
pub async fn eventually_async<T: Outcome>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> T,
) -> T {
    let start = Instant::now();
    while start.elapsed() < within {
        let outcome = probe().await;
        if outcome.done() {
            return outcome;
        }
        tokio::time::sleep(POLL).await;
    }
    probe().await
}
