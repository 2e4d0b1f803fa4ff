use super::*;

fn good() -> HeaderSnapshot {
    HeaderSnapshot {
        magic: MAGIC,
        format: FORMAT,
        kind: kind::RAW,
        layout_hash: 7,
        len: 4096,
        state: READY,
        creator_pid: 1,
        creator_nonce: 2,
        payload_len: 100,
    }
}

fn any() -> Expect {
    Expect { kind: None, layout_hash: None, min_payload: 0 }
}

#[test]
fn a_good_header_passes() {
    assert!(good().validate(&any(), 4096).is_ok());
    let exact = Expect { kind: Some(kind::RAW), layout_hash: Some(7), min_payload: 100 };
    assert!(good().validate(&exact, 4096).is_ok());
}

#[test]
fn each_field_is_checked() {
    let e = |s: HeaderSnapshot, x: Expect, len| s.validate(&x, len).unwrap_err();
    assert!(matches!(e(HeaderSnapshot { magic: 1, ..good() }, any(), 4096), Error::Corrupt { .. }));
    assert!(matches!(e(HeaderSnapshot { format: FORMAT + 1, ..good() }, any(), 4096), Error::VersionMismatch { .. }));
    let other_abi = FORMAT_VERSION | (0x0a << 16);
    assert!(matches!(e(HeaderSnapshot { format: other_abi, ..good() }, any(), 4096), Error::VersionMismatch { .. }));
    assert!(matches!(e(good(), Expect { kind: Some(kind::TYPED), ..any() }, 4096), Error::KindMismatch { .. }));
    assert!(matches!(
        e(good(), Expect { layout_hash: Some(8), ..any() }, 4096),
        Error::LayoutMismatch { expected: 8, found: 7 }
    ));
    assert!(matches!(e(good(), any(), 2048), Error::Truncated { expected: 4096, found: 2048 }));
    assert!(matches!(e(good(), any(), 8192), Error::Corrupt { .. }));
    assert!(matches!(e(HeaderSnapshot { payload_len: 4000, ..good() }, any(), 4096), Error::Corrupt { .. }));
    assert!(matches!(
        e(good(), Expect { min_payload: 101, ..any() }, 4096),
        Error::SizeMismatch { expected: 101, found: 100 }
    ));
    assert!(matches!(e(HeaderSnapshot { len: 64, payload_len: 0, ..good() }, any(), 64), Error::Corrupt { .. }));
    assert!(matches!(e(HeaderSnapshot { state: 0, ..good() }, any(), 4096), Error::Corrupt { .. }));
}

#[test]
fn bytes_round_trip_through_the_table_offsets() {
    let s = good();
    let mut b = [0u8; HEADER_SIZE];
    b[0..8].copy_from_slice(&s.magic.to_ne_bytes());
    b[8..12].copy_from_slice(&s.format.to_ne_bytes());
    b[12..16].copy_from_slice(&s.kind.to_ne_bytes());
    b[16..24].copy_from_slice(&s.layout_hash.to_ne_bytes());
    b[24..32].copy_from_slice(&s.len.to_ne_bytes());
    b[32..36].copy_from_slice(&s.state.to_ne_bytes());
    b[36..40].copy_from_slice(&s.creator_pid.to_ne_bytes());
    b[40..48].copy_from_slice(&s.creator_nonce.to_ne_bytes());
    b[48..56].copy_from_slice(&s.payload_len.to_ne_bytes());
    assert_eq!(HeaderSnapshot::from_bytes(&b), s);
}

#[test]
fn wait_ready_sees_states() {
    let w = AtomicU32::new(READY);
    assert!(wait_ready(&w, None).is_ok());
    let w = AtomicU32::new(POISONED);
    assert!(matches!(wait_ready(&w, None), Err(Error::Corrupt { .. })));
    let w = AtomicU32::new(12345);
    assert!(matches!(wait_ready(&w, None), Err(Error::Corrupt { .. })));
    let w = AtomicU32::new(INITIALIZING);
    let soon = Instant::now() + std::time::Duration::from_millis(20);
    assert!(matches!(wait_ready(&w, Some(soon)), Err(Error::NotReady)));
}

#[test]
fn publish_wakes_a_waiter() {
    let w = std::sync::Arc::new(AtomicU32::new(INITIALIZING));
    let w2 = w.clone();
    let t = std::thread::spawn(move || wait_ready(&w2, Some(Instant::now() + std::time::Duration::from_secs(30))));
    std::thread::sleep(std::time::Duration::from_millis(10));
    publish(&w);
    assert!(t.join().expect("waiter thread").is_ok());
}

proptest::proptest! {
    /// RELIABILITY case 30 (the pure part): random header bytes only ever
    /// give an error or a header that passed every check; never a panic.
    #[test]
    fn random_headers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, HEADER_SIZE),
                                  file_len in 0u64..1 << 40, min in 0u64..1 << 20) {
        let mut b = [0u8; HEADER_SIZE];
        b.copy_from_slice(&bytes);
        let s = HeaderSnapshot::from_bytes(&b);
        let x = Expect { kind: Some(kind::RAW), layout_hash: None, min_payload: min };
        if s.validate(&x, file_len).is_ok() {
            proptest::prop_assert!(s.payload_len + HEADER_SIZE as u64 <= file_len);
            proptest::prop_assert!(s.payload_len >= min);
        }
    }

    /// Random headers that carry our magic and format exercise the deeper
    /// checks.
    #[test]
    fn random_fields_behind_a_good_magic(kind in 0u32..4, len in 0u64..1 << 32, payload in 0u64..1 << 33,
                                         state in proptest::prop_oneof![proptest::strategy::Just(READY), 0u32..8],
                                         file_len in 0u64..1 << 32) {
        let s = HeaderSnapshot { kind, len, payload_len: payload, state, ..good() };
        if s.validate(&any(), file_len).is_ok() {
            proptest::prop_assert_eq!(s.len, file_len);
            proptest::prop_assert!(s.payload_len <= s.len - HEADER_SIZE as u64);
        }
    }
}
