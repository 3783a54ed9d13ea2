//! A wall-clock cap on one plugin call that costs nothing while the call does not wait: the
//! timer starts only when the call first waits on host I/O (fetch, state), so a call that runs
//! to its end in one poll never touches the timer wheel.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::time::Sleep;

/// Resolves to `Some(output)`, or `None` when `deadline` passed first (the call is dropped).
pub(crate) struct WallClock<'a, F> {
    inner: Pin<&'a mut F>,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<'a, F: Future> WallClock<'a, F> {
    pub(crate) fn new(inner: Pin<&'a mut F>, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
        }
    }
}

impl<F: Future> Future for WallClock<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.inner.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
