//! CPU-bound batch work (building DMs, wrapping welcomes, encrypting) spread over the cores.
//!
//! A 500-recipient round is ~0.25 s of MLS work on one core; run on one thread it leaves the
//! other cores idle while the round's network and database calls wait behind it. Scoped
//! threads keep borrows simple (the provider and the client are `Sync`) and work on any tokio
//! runtime; like any CPU work inside an async fn they hold the calling worker for the
//! duration, which is now divided by the number of cores.

/// Below this many items a batch stays on the calling thread (spawning costs more).
const MIN_PARALLEL: usize = 16;

/// The cores this process may use, asked once: the answer comes from cgroup files, read anew
/// on every call.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn threads_for(items: usize) -> usize {
    let cores = cores();
    if items < MIN_PARALLEL {
        1
    } else {
        cores.min(items / (MIN_PARALLEL / 2)).max(1)
    }
}

/// `items.iter().map(f)`, in order, on up to one thread per core.
pub(super) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut refs: Vec<&T> = items.iter().collect();
    map_mut(&mut refs, |item| f(item))
}

/// `items.iter_mut().map(f)`, in order, on up to one thread per core.
pub(super) fn map_mut<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads <= 1 {
        return items.iter_mut().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    let (first, rest) = items.split_at_mut(per);
    std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .chunks_mut(per)
            .map(|chunk| s.spawn(move || chunk.iter_mut().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.iter_mut().map(f).collect();
        for h in handles {
            out.extend(h.join().expect("batch worker panicked"));
        }
        out
    })
}

/// `f` on up to one slice of `items` per core (a slice is at least 8 items), results joined
/// in order: for work that gains from seeing many items at once.
pub(super) fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads <= 1 {
        return f(items);
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    let (first, rest) = items.split_at(per);
    std::thread::scope(|s| {
        let handles: Vec<_> = rest
            .chunks(per)
            .map(|chunk| s.spawn(move || f(chunk)))
            .collect();
        let mut out = f(first);
        for h in handles {
            out.extend(h.join().expect("batch worker panicked"));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_input_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        let mut items = items;
        let out = super::map_mut(&mut items, |x| {
            *x += 1;
            *x
        });
        assert_eq!(out, (1..=1000).collect::<Vec<u32>>());
        let doubled = super::map_chunks(&out, |chunk| chunk.iter().map(|x| x * 2).collect());
        assert_eq!(doubled, (1..=1000).map(|x| x * 2).collect::<Vec<u32>>());
    }
}
