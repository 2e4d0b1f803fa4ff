use super::*;
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

/// A word on the heap.
struct HeapWord(AtomicU32, AtomicU32);

impl AsyncWord for HeapWord {
    fn word(&self) -> &AtomicU32 {
        &self.0
    }
    fn woken(&self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

fn heap_word() -> (Arc<HeapWord>, Arc<dyn AsyncWord>) {
    let w = Arc::new(HeapWord(AtomicU32::new(0), AtomicU32::new(0)));
    let dynw: Arc<dyn AsyncWord> = w.clone();
    (w, dynw)
}

/// Waits on `source` holding `expected` until the ticket fires.
fn wait_fired(source: &Arc<dyn AsyncWord>, expected: u32, deadline: Option<Instant>) -> Wake {
    let mut ticket: Option<Ticket> = None;
    block_on(poll_fn(|cx| {
        let t = ticket.get_or_insert_with(|| watch_word(source, expected, deadline, cx.waker()).expect("watch"));
        match t.fired() {
            Some(w) => Poll::Ready(w),
            None => {
                t.set_waker(cx.waker());
                Poll::Pending
            }
        }
    }))
}

#[test]
fn a_wake_call_fires_the_ticket_and_counts_as_woken() {
    let (w, source) = heap_word();
    let waker = {
        let w = w.clone();
        std::thread::spawn(move || {
            // Wake until the service was woken by a wake call (it may not
            // be asleep on the word yet at the first one).
            let guard = Instant::now() + Duration::from_secs(20);
            while w.1.load(Ordering::SeqCst) == 0 && Instant::now() < guard {
                crate::sys::futex::wake_all(&w.0);
                std::thread::yield_now();
            }
        })
    };
    assert_eq!(wait_fired(&source, 0, None), Wake::Woken);
    waker.join().expect("waker thread");
    assert!(w.1.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_changed_word_fires_at_once_or_when_seen() {
    let (w, source) = heap_word();
    w.0.store(5, Ordering::SeqCst);
    assert_eq!(wait_fired(&source, 4, None), Wake::Changed, "changed before registering");
    let changer = {
        let w = w.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.0.store(6, Ordering::SeqCst);
            crate::sys::futex::wake_all(&w.0);
        })
    };
    let got = wait_fired(&source, 5, None);
    assert!(matches!(got, Wake::Woken | Wake::Changed), "{got:?}");
    changer.join().expect("changer");
}

#[test]
fn a_deadline_fires_timed_out() {
    let (_w, source) = heap_word();
    let d = Instant::now() + Duration::from_millis(30);
    assert_eq!(wait_fired(&source, 0, Some(d)), Wake::TimedOut);
    assert!(Instant::now() >= d);
    let mut t = None;
    let got = block_on(poll_fn(|cx| {
        let t = t.get_or_insert_with(|| {
            watch_deadline(Instant::now() + Duration::from_millis(5), cx.waker()).expect("timer")
        });
        match t.fired() {
            Some(w) => Poll::Ready(w),
            None => Poll::Pending,
        }
    }));
    assert_eq!(got, Wake::TimedOut);
}

#[test]
fn more_words_than_one_call_takes_start_more_threads_and_dropped_tickets_are_forgotten() {
    let words: Vec<_> = (0..WORDS_PER_SHARD + 3).map(|_| heap_word()).collect();
    let waker = Waker::noop();
    let tickets: Vec<Ticket> = words.iter().map(|(_, s)| watch_word(s, 0, None, waker).expect("watch")).collect();
    assert!(threads() >= 2, "a second futex thread for the words past 127");
    assert!(tickets.iter().all(|t| t.fired().is_none()));
    // The last word's waiter fires when its word changes.
    let (last, _) = words.last().expect("words");
    last.0.store(1, Ordering::SeqCst);
    crate::sys::futex::wake_all(&last.0);
    let t = tickets.last().expect("ticket");
    let guard = Instant::now() + Duration::from_secs(20);
    while t.fired().is_none() && Instant::now() < guard {
        std::thread::yield_now();
    }
    assert!(t.fired().is_some());
    drop(tickets);
    with_service(|s| {
        for sh in &s.shards {
            for (_, src) in &words {
                assert!(!sh.watches(src.word().as_ptr() as usize), "a dropped ticket's word is unwatched");
            }
        }
    });
}

struct Pipe(std::os::fd::OwnedFd);

impl AsyncFd for Pipe {
    fn fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

#[test]
fn a_readable_descriptor_fires() {
    let (r, w) = rustix::pipe::pipe().expect("pipe");
    let source: Arc<dyn AsyncFd> = Arc::new(Pipe(r));
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        rustix::io::write(&w, b"x").expect("write");
        w
    });
    let mut t = None;
    let got = block_on(poll_fn(|cx| {
        let t = t.get_or_insert_with(|| watch_fd(&source, None, cx.waker()).expect("watch fd"));
        match t.fired() {
            Some(w) => Poll::Ready(w),
            None => Poll::Pending,
        }
    }));
    assert_eq!(got, Wake::Woken);
    drop(writer.join().expect("writer"));
    assert_eq!(
        super::park::block_on_until(std::future::pending::<()>(), Some(Instant::now() + Duration::from_millis(5))),
        None
    );
}

#[test]
fn two_wake_calls_racing_on_one_thread_both_arrive() {
    // Two notifiers wake two words of one futex thread at the same moment:
    // each wake call takes the thread off its word's queue and counts it
    // (as an eventcount's `coming`), while the call returns one index.
    // Both must be counted as arrived.
    use std::sync::Barrier;
    for round in 0..400 {
        let (a, sa) = heap_word();
        let (b, sb) = heap_word();
        let ta = watch_word(&sa, 0, None, Waker::noop()).expect("watch a");
        let tb = watch_word(&sb, 0, None, Waker::noop()).expect("watch b");
        std::thread::sleep(Duration::from_micros(300)); // the thread asleep on both
        let barrier = Arc::new(Barrier::new(2));
        let spawn = |w: Arc<HeapWord>, bar: Arc<Barrier>| {
            std::thread::spawn(move || {
                bar.wait();
                w.0.fetch_add(1, Ordering::SeqCst); // as a notifier bumps `seq`
                crate::sys::futex::wake(&w.0, 1)
            })
        };
        let (ha, hb) = (spawn(a.clone(), barrier.clone()), spawn(b.clone(), barrier));
        let kernel_woken = ha.join().expect("a") + hb.join().expect("b");
        let guard = Instant::now() + Duration::from_secs(20);
        while (ta.fired().is_none() || tb.fired().is_none()) && Instant::now() < guard {
            std::thread::yield_now();
        }
        let counted = (a.1.load(Ordering::SeqCst) + b.1.load(Ordering::SeqCst)) as usize;
        assert!(counted >= kernel_woken, "round {round}: {kernel_woken} wake-ups, {counted} counted as arrived");
    }
}
