//! Running a slow step (a download, a child process) on many items at once, with a bound.
//! Below every layer: it knows only `std`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `work` on every item (with its index), up to `jobs` at once: at least one thread, at
/// most one per item, each taking the next item not yet started, so one slow item does not hold
/// back a share of the others. The results come back in item order, whichever finished first.
/// A panic in `work` is re-raised here.
pub fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let result = work(index, item);
                *slots[index].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every item was taken: the workers ran until the list was done")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order_at_any_job_count() {
        let items: Vec<u64> = (0..50).collect();
        for jobs in [0, 1, 3, 200] {
            // Later items finish first: the order must still be the items'.
            let out = map_in_order(&items, jobs, |index, &item| {
                std::thread::sleep(std::time::Duration::from_micros(50 - item));
                (index, item * 2)
            });
            let expected: Vec<(usize, u64)> = (0..50).map(|i| (i as usize, i * 2)).collect();
            assert_eq!(out, expected, "jobs {jobs}");
        }
        assert!(map_in_order(&[] as &[u8], 4, |_, _| ()).is_empty());
    }

    #[test]
    fn up_to_jobs_items_run_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        map_in_order(&[(); 12], 3, |_, _| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            running.fetch_sub(1, Ordering::SeqCst);
        });
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
