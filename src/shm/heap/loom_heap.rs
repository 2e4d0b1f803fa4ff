//! The arena's cell protocol (`shm/heap.rs`) under loom: claims of free
//! bits never hand one cell to two claimers, and a cell with a reference
//! lent to a child stays live (its generation unchanged) until the last
//! reference, the holder's or the child's, is given back; only then can a
//! claimer take it, in the next generation.

use loom::sync::Arc;

use super::{BitWord, CellHead, acquire_ref, claim_bit, free_bit, live_in, release_ref, start_cell};
use crate::loom::atomic::Ordering;

const HASH: u64 = 0x5eed_0001;
const OTHER: u64 = 0x5eed_0002;

#[test]
fn two_claimers_never_share_a_cell() {
    loom::model(|| {
        // Cells 0 and 1 free, every other cell of the word taken.
        let words = Arc::new([BitWord::new(!0b11)]);
        let claimers: Vec<_> = (0..2)
            .map(|_| {
                let w = words.clone();
                loom::thread::spawn(move || claim_bit(&w[..], 0))
            })
            .collect();
        let mut got: Vec<usize> =
            claimers.into_iter().map(|t| t.join().expect("claimer").expect("a free cell")).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        assert_eq!(claim_bit(&words[..], 0), None, "all taken");
    });
}

#[test]
fn a_lent_cell_stays_live_until_the_last_reference_goes() {
    loom::model(|| {
        // Cell 0 live with its holder's reference; the only free-able bit.
        let words = Arc::new([BitWord::new(u64::MAX)]);
        let cell = Arc::new(CellHead::new());
        start_cell(&cell, HASH);
        // The holder encodes it for a child: one reference more.
        let generation = acquire_ref(&cell).expect("live");
        let holder = {
            let (w, c) = (words.clone(), cell.clone());
            loom::thread::spawn(move || {
                if release_ref(&c) {
                    free_bit(&w[..], 0);
                }
            })
        };
        let child = {
            let (w, c) = (words.clone(), cell.clone());
            loom::thread::spawn(move || {
                assert!(live_in(&c, generation), "the lent reference keeps the cell");
                assert_eq!(c.layout_hash.load(Ordering::Relaxed), HASH);
                if release_ref(&c) {
                    free_bit(&w[..], 0);
                }
            })
        };
        let claimer = {
            let (w, c) = (words.clone(), cell.clone());
            loom::thread::spawn(move || {
                let got = claim_bit(&w[..], 0);
                if got.is_some() {
                    // Only a freed cell's bit is clear: both references went.
                    assert!(!live_in(&c, generation));
                    start_cell(&c, OTHER);
                }
                got
            })
        };
        holder.join().expect("holder");
        child.join().expect("child");
        let claimed = claimer.join().expect("claimer");
        let s = cell.state.load(Ordering::Relaxed);
        assert_eq!(s >> 32, u64::from(generation) + 1, "freed once: one generation on");
        match claimed {
            Some(0) => assert_eq!((s & 0xffff_ffff, cell.layout_hash.load(Ordering::Relaxed)), (1, OTHER)),
            None => assert_eq!(s & 0xffff_ffff, 0),
            Some(i) => panic!("claimed cell {i}, which was never free"),
        }
    });
}
