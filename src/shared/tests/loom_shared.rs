//! The seqlock of `Value<T>`: a reader never accepts a torn value, and a
//! writer that dies mid-write makes readers give up (and take the lock)
//! instead of spinning.

use loom::sync::Arc;
use loom::sync::atomic::AtomicU64 as Word;

use crate::loom::atomic::AtomicU64;
use crate::shared::seqlock;

/// Two data words, both written with the same number on each write.
struct Cell {
    seq: AtomicU64,
    words: [Word; 2],
}

impl Cell {
    fn new(v: u64) -> Cell {
        Cell { seq: AtomicU64::new(0), words: [Word::new(v), Word::new(v)] }
    }
}

/// A writer writes [1, 1] then [2, 2] while a reader reads: whatever read
/// succeeds saw both words of one write.
#[test]
fn loom_shared_seqlock_reads_are_never_torn() {
    loom::model(|| {
        let c = Arc::new(Cell::new(0));
        let w = {
            let c = c.clone();
            loom::thread::spawn(move || {
                seqlock::write(&c.seq, &c.words, &[1, 1]);
                seqlock::write(&c.seq, &c.words, &[2, 2]);
            })
        };
        let mut out = [0u64; 2];
        if seqlock::read(&c.seq, &c.words, &mut out) {
            assert_eq!(out[0], out[1], "torn read: {out:?}");
            assert!(out[0] <= 2);
        }
        w.join().expect("writer");
        // After the writer is done a read always succeeds with the last value.
        assert!(seqlock::try_read(&c.seq, &c.words, &mut out));
        assert_eq!(out, [2, 2]);
    });
}

/// A writer that stops (dies) between its odd store and its even one:
/// readers fail within their bounded retries; the next writer (the lock's
/// recoverer) makes the word even again.
#[test]
fn loom_shared_dead_writer_bounds_readers() {
    loom::model(|| {
        let c = Arc::new(Cell::new(7));
        {
            let c = c.clone();
            loom::thread::spawn(move || {
                // The first half of `write`, then death.
                c.seq.store(1, crate::loom::atomic::Ordering::Relaxed);
                crate::loom::atomic::fence_release();
                c.words[0].store(8, crate::loom::atomic::Ordering::Relaxed);
            })
            .join()
            .expect("writer");
        }
        let mut out = [0u64; 2];
        assert!(!seqlock::read(&c.seq, &c.words, &mut out), "a read accepted a half-written value");
        assert!(seqlock::is_odd(&c.seq));
        seqlock::write(&c.seq, &c.words, &[9, 9]);
        assert!(seqlock::read(&c.seq, &c.words, &mut out));
        assert_eq!(out, [9, 9]);
    });
}
