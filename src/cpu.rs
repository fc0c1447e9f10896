//! Bounded CPU-heavy work (password hashes, webhook MACs over large bodies) off the async
//! worker threads. Each pool admits a fixed number of jobs at once; a caller waits at most a
//! short while for a slot and is otherwise told the pool is busy (the HTTP layer answers 503
//! with `Retry-After`). Without the bound, a flood of such jobs fills tokio's blocking pool
//! (512 threads), and memory-hard hashes multiply the process's memory by that much.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// No slot freed up within the pool's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {pool} pool is busy")]
pub struct Busy {
    pub pool: &'static str,
}

#[derive(Clone)]
pub struct CpuPool {
    name: &'static str,
    slots: Arc<Semaphore>,
    wait: Duration,
}

/// The machine's cores (what a pool of size `0` means).
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

impl CpuPool {
    /// `size` jobs at once (`0`: one per core); callers wait at most `wait` for a slot.
    pub fn new(name: &'static str, size: usize, wait: Duration) -> Self {
        let size = if size == 0 { cores() } else { size };
        Self { name, slots: Arc::new(Semaphore::new(size)), wait }
    }

    /// Runs `job` on the blocking pool once a slot is free. The slot is held until the job
    /// ends, even if the caller stops waiting (a dropped request cannot free it early).
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let busy = Busy { pool: self.name };
        let slot = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                metrics::counter!("boxoffice_cpu_pool_busy_total", "pool" => self.name).increment(1);
                return Err(busy);
            }
        };
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            job()
        });
        match handle.await {
            Ok(v) => Ok(v),
            // The job panicked: let the request fail like any panic (caught as a 500).
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_beyond_the_slots_wait_then_are_refused() {
        let pool = CpuPool::new("test", 1, Duration::from_millis(50));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || rx.recv().ok()).await })
        };
        // Wait until the first job holds the only slot.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.slots.available_permits() > 0 {
            assert!(std::time::Instant::now() < deadline, "the first job never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.run(|| 1).await, Err(Busy { pool: "test" }));
        tx.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(Some(())));
        assert_eq!(pool.run(|| 2).await, Ok(2));
    }
}
