//! Connection threads: every accepted connection is served, for its whole life, on one
//! of `server.http_threads` threads, each running a single-threaded tokio runtime of
//! its own (its own epoll and timers).
//!
//! Why not the shared multi-thread runtime: there, a worker that finds work wakes an
//! idle one to steal it, and a connection's task moves between cores. Measured on the
//! 2-core bench machine (`/proc/PID/status` context switches and utime+stime around
//! wrk): a safe-mode push cost 0.48 context switches and 35-38 µs of user time with the
//! runtime's 2 workers, against 0.01 and 30 µs on one worker. Here a connection's
//! requests never leave their thread; the accept loop hands each new connection to the
//! thread serving the fewest.
//!
//! What a request spawns (a webhook call, a customer-service reply) runs on its
//! connection's thread. Shared state (the store, credentials, metrics) is thread-safe
//! as before; the background tasks stay on the main runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

/// A connection to serve: a future made on the accept loop, first polled (so its
/// socket registered) on its thread.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The connection threads of one listener.
pub struct ConnThreads {
    threads: Vec<Thread>,
    /// Set to stop every thread, dropping the connections it still serves.
    stop: watch::Sender<bool>,
}

struct Thread {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    /// Connections this thread serves now.
    serving: Arc<AtomicUsize>,
    exited: Option<oneshot::Receiver<()>>,
}

impl ConnThreads {
    /// Starts `n` threads (0: one per core). A thread that cannot start is an error.
    pub fn start(n: usize, name: &str) -> std::io::Result<Self> {
        let n = match n {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (stop, stopped) = watch::channel(false);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (jobs, rx) = mpsc::unbounded_channel();
            let (exited_tx, exited) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    runtime.block_on(run(rx, stopped));
                    // Dropping the runtime drops what it still ran: the connections
                    // left after a stop, and with them their share of the state.
                    drop(runtime);
                    let _ = exited_tx.send(());
                })?;
            threads.push(Thread {
                jobs: Some(jobs),
                serving: Arc::new(AtomicUsize::new(0)),
                exited: Some(exited),
            });
        }
        Ok(ConnThreads { threads, stop })
    }

    /// Serves `conn` on the thread serving the fewest connections.
    pub fn serve(&self, conn: impl Future<Output = ()> + Send + 'static) {
        let Some(thread) = self
            .threads
            .iter()
            .min_by_key(|t| t.serving.load(Ordering::Relaxed))
        else {
            return;
        };
        let serving = thread.serving.clone();
        serving.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::pin(async move {
            conn.await;
            serving.fetch_sub(1, Ordering::Relaxed);
        });
        if let Some(jobs) = &thread.jobs {
            // A thread ends only after `close` or `stop`: a send cannot fail before.
            let _ = jobs.send(job);
        }
    }

    /// No more connections: the threads go on serving the ones they have.
    pub fn close(&mut self) {
        for t in &mut self.threads {
            t.jobs = None;
        }
    }

    /// Stops every thread (dropping its connections) and waits until all have ended.
    pub async fn stop(mut self) {
        self.close();
        let _ = self.stop.send(true);
        for t in &mut self.threads {
            if let Some(exited) = t.exited.take() {
                let _ = exited.await;
            }
        }
    }
}

impl Drop for ConnThreads {
    /// Dropped without `stop` (the serving task aborted): the threads stop by themselves.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A thread's loop: spawns the connections it is given until it is told to stop; once
/// no more come, serves those it has until then.
async fn run(mut jobs: mpsc::UnboundedReceiver<Job>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => drop(tokio::spawn(job)),
                None => break,
            },
            // A dropped sender is a stop too.
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
    let _ = stopped.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_busy_thread_and_stop_ends_them() {
        let threads = ConnThreads::start(2, "test-conn").unwrap();
        let (release, held) = watch::channel(false);
        let (names_tx, mut names) = mpsc::unbounded_channel();
        for _ in 0..4 {
            let (mut held, names_tx) = (held.clone(), names_tx.clone());
            threads.serve(async move {
                let name = std::thread::current().name().map(str::to_owned);
                names_tx.send(name).unwrap();
                let _ = held.wait_for(|r| *r).await;
            });
        }
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(names.recv().await.unwrap().unwrap());
        }
        seen.sort();
        assert_eq!(
            seen,
            ["test-conn-0", "test-conn-0", "test-conn-1", "test-conn-1"],
            "two each, none on the caller's thread"
        );
        // Stopped while the connections are still held: they are dropped, and stop
        // returns once both threads have ended.
        tokio::time::timeout(std::time::Duration::from_secs(5), threads.stop())
            .await
            .expect("the threads end on stop");
        drop(release);
    }
}
