//! The dispatcher's named background tasks, joined at shutdown with each one's
//! end logged: a task that panicked is reported by name, never dropped unseen.

use std::future::Future;

use tokio::task::JoinHandle;

#[derive(Default)]
pub struct Tasks(Vec<(&'static str, JoinHandle<()>)>);

impl Tasks {
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push((name, tokio::spawn(task)));
    }

    /// Waits for every task (their stop signal must have fired).
    pub async fn join(self) {
        for (name, handle) in self.0 {
            if let Err(e) = handle.await {
                tracing::error!(task = name, error = %e, "a dispatcher task failed");
            }
        }
    }
}
