//! The byte-message protocol with one loom cell per 8-byte word as the
//! buffer: loom reports any access of a word by both sides at once (a torn
//! or racy read), and the consumer checks every message's length and bytes
//! and their order. The sizes force a padding record and wrap-around in a
//! 64-byte buffer (messages of up to 24 bytes).

#![allow(unsafe_code)] // implements the protocol's `unsafe trait ByteSlots` over loom cells

use loom::cell::UnsafeCell;
use loom::sync::Arc;

use crate::loom::atomic::AtomicU64;
use crate::queue::bytes::{ByteConsumerCore, ByteProducerCore, ByteSlots};
use crate::queue::spsc::Positions;

/// A buffer of 8-byte words, each a loom cell.
struct LoomBytes(Vec<UnsafeCell<u64>>);

// SAFETY: every access goes through a loom cell, which checks concurrent
// access itself; offsets are 8-aligned and in bounds (the protocol's
// contract, checked by the indexing here too).
unsafe impl ByteSlots for LoomBytes {
    fn capacity(&self) -> u64 {
        (self.0.len() * 8) as u64
    }
    unsafe fn read_header(&self, off: u64) -> (u32, u32) {
        // SAFETY: loom checks the access.
        let w = self.0[(off / 8) as usize].with(|p| unsafe { *p });
        (w as u32, (w >> 32) as u32)
    }
    unsafe fn write_header(&self, off: u64, len: u32, tag: u32) {
        let w = u64::from(len) | (u64::from(tag) << 32);
        // SAFETY: loom checks the access.
        self.0[(off / 8) as usize].with_mut(|p| unsafe { *p = w });
    }
    unsafe fn copy_in(&self, off: u64, src: &[u8]) {
        for (k, chunk) in src.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: loom checks the access; the whole last word belongs
            // to the record (payloads are padded to 8 bytes).
            self.0[(off / 8) as usize + k].with_mut(|p| unsafe { *p = u64::from_le_bytes(w) });
        }
    }
    unsafe fn copy_out(&self, off: u64, dst: &mut [u8]) {
        for (k, chunk) in dst.chunks_mut(8).enumerate() {
            // SAFETY: loom checks the access.
            let w = self.0[(off / 8) as usize + k].with(|p| unsafe { *p }).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
    fn ptr(&self, _off: u64) -> *mut u8 {
        unreachable!("loans are not modelled")
    }
}

struct Ring {
    head: AtomicU64,
    tail: AtomicU64,
    buf: LoomBytes,
}

impl Ring {
    fn new(bytes: usize) -> Arc<Ring> {
        Arc::new(Ring {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            buf: LoomBytes((0..bytes / 8).map(|_| UnsafeCell::new(0)).collect()),
        })
    }

    fn pos(&self) -> Positions<'_> {
        Positions { head: &self.head, tail: &self.tail }
    }
}

/// Message `k` of length `len`: every byte derives from both.
fn message(k: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| k.wrapping_mul(31) ^ i as u8).collect()
}

/// Streams messages of `lens` through a 64-byte ring: in order, whole, no
/// races. With [20, 1, 24]: records of 32, 16 and 32 bytes, so the third
/// needs a 16-byte padding record at the end and starts over at 0, reusing
/// the first record's words.
fn stream(lens: &'static [usize]) {
    loom::model(move || {
        let r = Ring::new(64);
        let producer = {
            let r = r.clone();
            loom::thread::spawn(move || {
                let mut p = ByteProducerCore::attach(&r.pos());
                for (k, &len) in lens.iter().enumerate() {
                    let msg = message(k as u8, len);
                    while !p.push(&r.pos(), &r.buf, &msg, 1 + k as u32).expect("positions ok") {
                        loom::thread::yield_now();
                    }
                }
            })
        };
        let mut c = ByteConsumerCore::attach(&r.pos());
        let mut out = Vec::new();
        for (k, &len) in lens.iter().enumerate() {
            loop {
                match c.pop_into(&r.pos(), &r.buf, &mut out).expect("positions ok") {
                    Some(tag) => {
                        assert_eq!(tag, 1 + k as u32, "order");
                        assert_eq!(out, message(k as u8, len), "message {k} whole");
                        break;
                    }
                    None => loom::thread::yield_now(),
                }
            }
        }
        producer.join().expect("producer");
    });
}

#[test]
fn messages_with_padding_and_wrap_arrive_whole_and_in_order() {
    stream(&[20, 1, 24]);
}

#[test]
fn an_exactly_full_ring_then_a_wrap() {
    // 24 + 24 bytes: two 32-byte records fill the ring; the third (8
    // bytes, a 16-byte record) must wait for the first to be consumed
    // and reuses its words at offset 0.
    stream(&[24, 24, 8]);
}
