//! The public `Queue` and `JoinableQueue` API: FIFO order, the item limit,
//! non-blocking and timed calls with their items given back, `close`,
//! many producer and consumer threads, items of every size (spilled ones
//! leave nothing behind), named queues, type checks, encode failures, and
//! processes: children putting and getting, `Disconnected` once every
//! process on the other side has exited, and `JoinableQueue::join` with
//! consumers that finish or die.
//!
//! SIGKILLs at failpoints, chaos and soak runs and hostile peers are in
//! `tests/mp/queue.rs` (RELIABILITY cases 17, 19, 35, 42, 50).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::Names;
use shmproc::{
    Error, GetError, GetTimeoutError, JoinableQueue, Process, PutError, PutTimeoutError, Queue, TryGetError,
    TryPutError,
};

/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);

fn test_names(tag: &str) -> Names {
    Names::new("queuetest", tag)
}

#[test]
fn fifo_order_limit_and_non_blocking_calls() {
    let q = Queue::<(u32, String)>::new(3).expect("queue");
    assert!(q.is_empty() && !q.is_full());
    for i in 0..3 {
        q.put((i, format!("#{i}"))).expect("put");
    }
    assert_eq!(q.qsize(), 3);
    assert!(q.is_full());
    match q.try_put((9, "nine".into())) {
        Err(TryPutError::Full(item)) => assert_eq!(item, (9, "nine".to_string())),
        other => panic!("expected Full, got {other:?}"),
    }
    match q.put_timeout((8, "eight".into()), Duration::from_millis(20)) {
        Err(PutTimeoutError::Timeout(item)) => assert_eq!(item.0, 8),
        other => panic!("expected Timeout, got {other:?}"),
    }
    for i in 0..3 {
        assert_eq!(q.try_get().expect("item"), (i, format!("#{i}")));
    }
    assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
    assert!(matches!(q.get_timeout(Duration::from_millis(20)), Err(GetTimeoutError::Timeout)));
    assert!(q.is_empty());
}

#[test]
fn a_blocked_put_resumes_when_a_get_makes_room() {
    let q = Queue::<u64>::new(3).expect("queue");
    for i in 0..3 {
        q.put(i).expect("put");
    }
    let q2 = q.clone();
    let t = std::thread::spawn(move || {
        q2.put(3).expect("the 4th put waits, then lands");
    });
    // The 4th put is blocked (or about to be); take one item to make room.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(q.get().expect("get"), 0);
    t.join().expect("putter");
    let rest: Vec<u64> = (0..3).map(|_| q.get_timeout(GUARD).expect("item")).collect();
    assert_eq!(rest, [1, 2, 3]);
}

#[test]
fn close_drains_then_reports_closed_and_wakes_sleepers() {
    let q = Queue::<u8>::new(0).expect("queue");
    let q2 = q.clone();
    let sleeper = std::thread::spawn(move || q2.get_timeout(GUARD));
    std::thread::sleep(Duration::from_millis(20));
    q.close();
    assert!(matches!(sleeper.join().expect("sleeper"), Err(GetTimeoutError::Closed)));
    assert!(matches!(q.try_put(1), Err(TryPutError::Closed(1))));
    assert!(matches!(q.put(1), Err(PutError::Closed(1))));
    assert!(q.is_closed());
    assert!(matches!(q.get(), Err(GetError::Closed)));
}

#[test]
fn items_put_before_close_are_still_delivered() {
    let q = Queue::<u8>::new(0).expect("queue");
    q.put(1).expect("put");
    q.put(2).expect("put");
    q.close();
    assert_eq!(q.get().expect("1"), 1);
    assert_eq!(q.try_get().expect("2"), 2);
    assert!(matches!(q.try_get(), Err(TryGetError::Closed)));
}

#[test]
fn many_threads_put_and_get_every_item_exactly_once() {
    const PRODUCERS: u64 = 4;
    const CONSUMERS: usize = 4;
    const EACH: u64 = 5_000;
    let q = Queue::<(u64, u64)>::builder().capacity_bytes(4096).build().expect("queue");
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for s in 0..EACH {
                    q.put((p, s)).expect("put");
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut last = [None::<u64>; PRODUCERS as usize];
                while let Ok((p, s)) = q.get_timeout(GUARD) {
                    if (p, s) == (u64::MAX, 0) {
                        break;
                    }
                    // Each producer's items arrive in its order.
                    assert!(last[p as usize].is_none_or(|l| l < s), "order of producer {p}");
                    last[p as usize] = Some(s);
                    got.push((p, s));
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    for _ in 0..CONSUMERS {
        q.put((u64::MAX, 0)).expect("stop marker");
    }
    let mut seen = HashSet::new();
    for c in consumers {
        for item in c.join().expect("consumer") {
            assert!(seen.insert(item), "{item:?} delivered twice");
        }
    }
    assert_eq!(seen.len() as u64, PRODUCERS * EACH);
}

#[test]
fn items_of_every_size_travel_and_spills_leave_nothing() {
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(4096).build().expect("queue");
    let sizes = [0usize, 1, 7, 8, 100, 2039, 2040, 2041, 4096, 100_000, 3 << 20];
    let t = {
        let q = q.clone();
        std::thread::spawn(move || {
            for &n in &sizes {
                q.put((0..n).map(|i| (i * 7 + n) as u8).collect()).expect("put");
            }
        })
    };
    for &n in &sizes {
        let v = q.get_timeout(GUARD).expect("item");
        assert_eq!(v.len(), n);
        assert!(v.iter().enumerate().all(|(i, &b)| b == (i * 7 + n) as u8), "content of the {n}-byte item");
    }
    t.join().expect("putter");
    // The queue keeps handed-back spill segments for reuse while it lives;
    // dropped by its creator, it keeps none.
    drop(q);
    assert!(common::my_spills().is_empty(), "spill segments left: {:?}", common::my_spills());
}

#[test]
fn named_queues_open_by_name_with_type_checks() {
    let names = test_names("named");
    let name = names.name("q");
    let q = Queue::<String>::create(&name, 0).expect("create");
    let other = Queue::<String>::open(&name).expect("open");
    other.put("from the opener".into()).expect("put");
    assert_eq!(q.get().expect("get"), "from the opener");
    assert!(matches!(Queue::<u32>::open(&name), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(JoinableQueue::<String>::open(&name), Err(Error::InvalidArgument { .. })));
    assert!(matches!(Queue::<String>::create(&name, 0), Err(Error::Exists { .. })));
    drop((q, other));
    assert!(matches!(Queue::<String>::open(&name), Err(Error::NotFound { .. })));
    names.finish();
}

#[test]
fn bad_capacities_are_refused() {
    for cap in [0usize, 1, 63, 100, 1 << 33] {
        assert!(
            matches!(Queue::<u8>::builder().capacity_bytes(cap).build(), Err(Error::InvalidArgument { .. })),
            "capacity {cap}"
        );
    }
}

/// A value whose encoding always fails.
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be encoded"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unencodable)
    }
}

/// RELIABILITY case 42 (in one process): an encode failure is returned to
/// the caller at once and the queue stays usable.
#[test]
fn an_item_that_fails_to_encode_is_an_error_and_nothing_is_put() {
    #[derive(serde::Serialize, serde::Deserialize)]
    enum Item {
        Good(u32),
        Bad(Unencodable),
    }
    let q = Queue::<Item>::new(0).expect("queue");
    assert!(matches!(q.put(Item::Bad(Unencodable)), Err(PutError::Failed(_, Error::Codec { .. }))));
    match q.try_put(Item::Bad(Unencodable)) {
        Err(TryPutError::Failed(Item::Bad(_), Error::Codec { .. })) => {}
        other => panic!("expected Failed(Codec), got {other:?}"),
    }
    assert!(q.is_empty());
    q.put(Item::Good(5)).expect("still usable");
    assert!(matches!(q.get(), Ok(Item::Good(5))));
}

fn produce(args: (Queue<(u32, u64)>, u32, u64)) {
    let (q, id, n) = args;
    for s in 0..n {
        q.put((id, s)).expect("put");
    }
}

/// A producer's id and sequence number.
type Item = (u32, u64);

fn consume(args: (Queue<Item>, Queue<Vec<Item>>)) {
    let (q, results) = args;
    // A producer of `results` from the start: once the first consumer has
    // reported and exited, the parent must not find every producer of
    // `results` dead while this one still consumes.
    results.register_producer().expect("register as a producer of results");
    let mut got = Vec::new();
    while let Ok(item) = q.get() {
        got.push(item);
    }
    results.put(got).expect("report");
}

/// Two producer and two consumer processes: every item arrives exactly
/// once, each producer's in order; when the producers have exited and the
/// queue is drained, `get` reports `Disconnected` instead of waiting.
#[test]
fn processes_put_and_get_and_learn_when_producers_are_gone() {
    const EACH: u64 = 2_000;
    let q = Queue::<(u32, u64)>::builder().capacity_bytes(1024).build().expect("queue");
    let results = Queue::<Vec<(u32, u64)>>::new(0).expect("results");
    let mut consumers: Vec<_> =
        (0..2).map(|_| Process::spawn(consume, (q.clone(), results.clone())).expect("consumer")).collect();
    let mut producers: Vec<_> =
        (0..2).map(|id| Process::spawn(produce, (q.clone(), id, EACH)).expect("producer")).collect();
    for p in &mut producers {
        p.join_timeout(GUARD).expect("producer joined: producer ok");
    }
    let mut seen = HashSet::new();
    for _ in 0..2 {
        let got = results.get_timeout(GUARD).expect("a consumer's report");
        let mut last = [None::<u64>; 2];
        for (id, s) in got {
            assert!(last[id as usize].is_none_or(|l| l < s), "order of producer {id}");
            last[id as usize] = Some(s);
            assert!(seen.insert((id, s)), "({id}, {s}) twice");
        }
    }
    assert_eq!(seen.len() as u64, 2 * EACH);
    for c in &mut consumers {
        c.join_timeout(GUARD).expect("consumer joined: consumer ok");
    }
    assert!(matches!(q.get_timeout(GUARD), Err(GetTimeoutError::Disconnected)));
}

fn take_one_and_leave(q: Queue<u32>) -> u32 {
    q.get().expect("one item")
}

/// A full queue whose only consumer process has exited: `put` reports
/// `Disconnected` instead of waiting forever.
#[test]
fn put_on_a_full_queue_without_consumers_is_disconnected() {
    let q = Queue::<u32>::new(2).expect("queue");
    q.put(1).expect("put");
    let mut child = Process::spawn(take_one_and_leave, q.clone()).expect("consumer");
    assert_eq!(child.join_timeout(GUARD).expect("joined: ok"), 1);
    q.put(2).expect("room");
    q.put(3).expect("room");
    assert!(matches!(q.put(4), Err(PutError::Disconnected(4))));
    match q.put_timeout(5, GUARD) {
        Err(PutTimeoutError::Disconnected(5)) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

fn work(q: JoinableQueue<u64>) {
    while let Ok(n) = q.get() {
        std::hint::black_box(n * n);
        q.task_done().expect("task_done");
    }
}

#[test]
fn joinable_queue_join_waits_for_every_task_done() {
    let q = JoinableQueue::<u64>::new(8).expect("queue");
    let workers: Vec<_> =
        (0..2).map(|_| Process::builder().daemon(true).spawn(work, q.clone()).expect("worker")).collect();
    for n in 0..500 {
        q.put(n).expect("put");
    }
    q.join_timeout(GUARD).expect("every item done");
    assert_eq!(q.unfinished(), 0);
    assert_eq!(q.abandoned(), 0);
    for w in &workers {
        w.terminate().expect("terminate");
    }
}

#[test]
fn task_done_more_often_than_get_is_refused() {
    let q = JoinableQueue::<u8>::new(0).expect("queue");
    assert!(matches!(q.task_done(), Err(Error::InvalidArgument { .. })));
    q.put(1).expect("put");
    assert!(matches!(q.join_timeout(Duration::from_millis(10)), Err(shmproc::QueueJoinTimeoutError::Timeout)));
    q.get().expect("get");
    assert_eq!(q.unfinished(), 1);
    q.task_done().expect("done");
    assert!(matches!(q.task_done(), Err(Error::InvalidArgument { .. })));
    q.join().expect("joined");
}

fn take_and_die(q: JoinableQueue<u8>) {
    q.get().expect("item");
    // Exits without task_done: the item is abandoned.
}

/// A consumer that exits holding an item it never marked done does not
/// make `join` hang: it returns `Abandoned`.
#[test]
fn join_returns_abandoned_when_a_consumer_leaves_with_an_item() {
    let q = JoinableQueue::<u8>::new(0).expect("queue");
    q.put(7).expect("put");
    let mut child = Process::spawn(take_and_die, q.clone()).expect("consumer");
    child.join_timeout(GUARD).expect("joined: ok");
    match q.join_timeout(GUARD) {
        Err(shmproc::QueueJoinTimeoutError::Abandoned { items: 1 }) => {}
        other => panic!("expected Abandoned {{ items: 1 }}, got {other:?}"),
    }
    assert_eq!(q.abandoned(), 1);
    assert_eq!(q.unfinished(), 0);
}

fn put_big_and_leave(q: Queue<Vec<u8>>) {
    q.put(vec![5; 100_000]).expect("put a spilled item");
}

/// A spilled item whose producer has exited survives `cleanup_stale`: its
/// spill segment counts as the queue creator's, who is alive.
#[test]
fn spilled_items_of_exited_producers_survive_cleanup_stale() {
    let q = Queue::<Vec<u8>>::builder().capacity_bytes(4096).build().expect("queue");
    let mut child = Process::spawn(put_big_and_leave, q.clone()).expect("producer");
    child.join_timeout(GUARD).expect("joined: ok");
    shmproc::cleanup_stale().expect("cleanup_stale");
    assert_eq!(q.get_timeout(GUARD).expect("the item is still there"), vec![5; 100_000]);
}

/// `iter()` blocks and ends when the queue is closed and drained; an item
/// that does not decode comes out as an `Err` and the iteration goes on;
/// `try_iter()` takes what is there now; `for x in &q` is `iter()`.
#[test]
fn iterators_end_on_close_and_yield_decode_failures() {
    let q = Queue::<u32>::new(0).expect("queue");
    for i in 0..3 {
        q.put(i).expect("put");
    }
    assert_eq!(q.try_iter().collect::<Result<Vec<_>, _>>().expect("decoded"), [0, 1, 2]);
    assert_eq!(q.try_iter().count(), 0, "nothing there now");
    // A producer thread puts while this one iterates; close ends the loop.
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 10..20 {
                q.put(i).expect("put");
            }
            q.close();
        });
        let mut got = Vec::new();
        for x in &q {
            got.push(x.expect("decoded"));
        }
        assert_eq!(got, (10..20).collect::<Vec<_>>());
    });
    assert_eq!(q.iter().count(), 0, "closed and drained: ends at once");
    // An item that does not decode is an `Err` in the middle of the
    // iteration, which goes on.
    #[derive(serde::Serialize)]
    struct Undecodable;
    impl<'de> serde::Deserialize<'de> for Undecodable {
        fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Err(serde::de::Error::custom("this value refuses to be decoded"))
        }
    }
    let bad = Queue::<Undecodable>::new(0).expect("queue");
    bad.put(Undecodable).expect("put");
    bad.put(Undecodable).expect("put");
    let items: Vec<_> = bad.try_iter().collect();
    assert_eq!(items.len(), 2, "both yielded");
    assert!(items.iter().all(|r| matches!(r, Err(Error::Codec { .. }))));
}

/// Every variant of the blocking put and get errors converts to the
/// crate's error, prints, and hands the item back.
#[test]
fn put_and_get_errors_convert_and_give_the_item_back() {
    type Case = (fn() -> PutError<u8>, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        (|| PutError::Closed(1), |e| matches!(e, Error::Closed)),
        (|| PutError::Disconnected(1), |e| matches!(e, Error::Disconnected)),
        (|| PutError::Failed(1, Error::Timeout), |e| matches!(e, Error::Timeout)),
    ];
    for (make, is) in cases {
        let pe = make();
        assert!(!format!("{pe:?}").is_empty() && !pe.to_string().is_empty());
        assert_eq!(pe.into_inner(), 1);
        let e: Error = make().into();
        assert!(is(&e), "{e:?}");
    }
    for (ge, is) in [
        (GetError::Closed, (|e| matches!(e, Error::Closed)) as fn(&Error) -> bool),
        (GetError::Disconnected, |e| matches!(e, Error::Disconnected)),
        (GetError::Failed(Error::Timeout), |e| matches!(e, Error::Timeout)),
    ] {
        assert!(!format!("{ge:?}").is_empty() && !ge.to_string().is_empty());
        let e: Error = ge.into();
        assert!(is(&e));
    }
    let e: Error = shmproc::QueueJoinError::Abandoned { items: 3 }.into();
    assert!(matches!(e, Error::Abandoned { items: 3 }));
    for (je, is) in [
        (shmproc::QueueJoinTimeoutError::Timeout, (|e| matches!(e, Error::Timeout)) as fn(&Error) -> bool),
        (shmproc::QueueJoinTimeoutError::Abandoned { items: 3 }, |e| matches!(e, Error::Abandoned { items: 3 })),
    ] {
        assert!(!je.to_string().is_empty());
        assert!(is(&je.into()));
    }
    assert!(!shmproc::QueueJoinError::Abandoned { items: 3 }.to_string().is_empty());
}

// ---------------------------------------------------------------------------
// shutdown (Python 3.13 queue.Queue.shutdown)
// ---------------------------------------------------------------------------

/// Every put form on a shut-down queue fails with `ShutDown`, giving the
/// item back.
fn assert_puts_shut_down(q: &Queue<u32>) {
    assert!(matches!(q.put(10), Err(PutError::ShutDown(10))));
    assert!(matches!(q.try_put(11), Err(TryPutError::ShutDown(11))));
    assert!(matches!(q.put_timeout(12, GUARD), Err(PutTimeoutError::ShutDown(12))));
    assert!(matches!(q.put_deadline(13, std::time::Instant::now() + GUARD), Err(PutTimeoutError::ShutDown(13))));
}

/// Every get form on a shut-down, drained queue fails with `ShutDown`.
fn assert_gets_shut_down(q: &Queue<u32>) {
    assert!(matches!(q.get(), Err(GetError::ShutDown)));
    assert!(matches!(q.try_get(), Err(TryGetError::ShutDown)));
    assert!(matches!(q.get_timeout(GUARD), Err(GetTimeoutError::ShutDown)));
    assert!(matches!(q.get_deadline(std::time::Instant::now() + GUARD), Err(GetTimeoutError::ShutDown)));
}

// CPython: test_queue.BaseQueueTestMixin.test_shutdown_empty (put and get
// on an empty shut-down queue raise ShutDown).
#[test]
fn shutdown_of_an_empty_queue_stops_puts_and_gets() {
    for immediate in [false, true] {
        let q = Queue::<u32>::new(0).expect("queue");
        assert!(!q.is_shutdown());
        q.shutdown(immediate).expect("shutdown");
        assert!(q.is_shutdown());
        assert!(!q.is_closed(), "shutdown is not close");
        assert_puts_shut_down(&q);
        assert_gets_shut_down(&q);
        assert!(format!("{q:?}").contains("shut_down: true"));
    }
}

// CPython: test_queue.BaseQueueTestMixin.test_shutdown_nonempty and
// test_shutdown_all_methods_in_one_thread (gets drain, then ShutDown).
#[test]
fn shutdown_lets_gets_drain_what_is_left() {
    let q = Queue::<u32>::new(0).expect("queue");
    for i in 0..3 {
        q.put(i).expect("put");
    }
    q.shutdown(false).expect("shutdown");
    assert_puts_shut_down(&q);
    assert_eq!(q.get().expect("left"), 0);
    assert_eq!(q.try_get().expect("left"), 1);
    assert_eq!(q.get_timeout(GUARD).expect("left"), 2);
    assert_gets_shut_down(&q);
    // Iterators end at the shutdown, as at a close.
    assert_eq!(q.iter().count(), 0);
}

// CPython: test_queue.BaseQueueTestMixin.test_shutdown_immediate_all_methods_in_one_thread
// (the items are dropped, every get and put raises ShutDown, join returns).
#[test]
fn immediate_shutdown_drops_the_items_and_stops_gets_at_once() {
    let q = JoinableQueue::<u32>::new(0).expect("queue");
    for i in 0..3 {
        q.put(i).expect("put");
    }
    // One item is taken and not yet done: it stays unfinished.
    assert_eq!(q.get().expect("take"), 0);
    q.shutdown(true).expect("shutdown");
    assert!(q.is_empty());
    assert_puts_shut_down(&q);
    assert_gets_shut_down(&q);
    assert_eq!(q.unfinished(), 1, "the dropped items count as done");
    assert_eq!(q.join_timeout(Duration::ZERO), Err(shmproc::QueueJoinTimeoutError::Timeout));
    q.task_done().expect("the taken item");
    q.join().expect("every item done");
    assert!(q.task_done().is_err(), "no more items to mark done");
}

// The errors convert into `Error::ShutDown`, and the items come back.
#[test]
fn shutdown_errors_convert_and_print() {
    assert!(matches!(Error::from(PutError::ShutDown(1u8)), Error::ShutDown));
    assert!(matches!(Error::from(TryPutError::ShutDown(1u8)), Error::ShutDown));
    assert!(matches!(Error::from(PutTimeoutError::ShutDown(1u8)), Error::ShutDown));
    assert!(matches!(Error::from(GetError::ShutDown), Error::ShutDown));
    assert!(matches!(Error::from(TryGetError::ShutDown), Error::ShutDown));
    assert!(matches!(Error::from(GetTimeoutError::ShutDown), Error::ShutDown));
    assert_eq!(PutError::ShutDown(7u8).into_inner(), 7);
    assert_eq!(format!("{:?}", PutError::ShutDown(7u8)), "ShutDown(..)");
    assert_eq!(GetError::ShutDown.to_string(), "the queue was shut down");
}

#[cfg(feature = "async")]
#[test]
fn async_put_and_get_see_the_shutdown() {
    let q = Queue::<u32>::new(0).expect("queue");
    q.put(1).expect("put");
    q.shutdown(false).expect("shutdown");
    futures::executor::block_on(async {
        assert!(matches!(q.put_async(2).await, Err(PutError::ShutDown(2))));
        assert_eq!(q.get_async().await.expect("left"), 1);
        assert!(matches!(q.get_async().await, Err(GetError::ShutDown)));
    });
}

/// What a child blocked on the queue saw when it woke.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Woke {
    Item(u32),
    ShutDownWith(u32),
    ShutDown,
    Other(String),
}

fn blocked_get(q: Queue<u32>) -> Woke {
    match q.get() {
        Ok(i) => Woke::Item(i),
        Err(GetError::ShutDown) => Woke::ShutDown,
        Err(e) => Woke::Other(e.to_string()),
    }
}

fn blocked_put((q, item): (Queue<u32>, u32)) -> Woke {
    match q.put(item) {
        Ok(()) => Woke::Item(item),
        Err(PutError::ShutDown(back)) => Woke::ShutDownWith(back),
        Err(e) => Woke::Other(e.to_string()),
    }
}

// CPython: test_queue.BaseQueueTestMixin.test_shutdown_all_methods_in_many_threads
// and test_shutdown_immediate_all_methods_in_many_threads, with processes:
// getters blocked on an empty queue and putters blocked on a full one, in
// other processes, wake with ShutDown (the putters with their item). The
// outcome is the same whether a child blocked before the shutdown or came
// after it, so nothing waits for the children to block.
#[test]
fn blocked_getters_and_putters_in_other_processes_wake() {
    for immediate in [false, true] {
        let empty = Queue::<u32>::new(0).expect("queue");
        let full = Queue::<u32>::new(1).expect("queue");
        full.put(1).expect("fill");
        let mut getters: Vec<_> = (0..2).map(|_| Process::spawn(blocked_get, empty.clone()).expect("getter")).collect();
        let mut putters: Vec<_> =
            (0..2).map(|i| Process::spawn(blocked_put, (full.clone(), 100 + i)).expect("putter")).collect();
        empty.shutdown(immediate).expect("shutdown");
        full.shutdown(immediate).expect("shutdown");
        for g in &mut getters {
            assert_eq!(g.join_timeout(GUARD).expect("getter"), Woke::ShutDown);
        }
        for (i, p) in putters.iter_mut().enumerate() {
            assert_eq!(p.join_timeout(GUARD).expect("putter"), Woke::ShutDownWith(100 + i as u32));
        }
        // The item left in the full queue: got after a plain shutdown,
        // dropped by an immediate one.
        if immediate {
            assert!(matches!(full.get(), Err(GetError::ShutDown)));
        } else {
            assert_eq!(full.get().expect("left"), 1);
        }
    }
}

fn join_queue(q: JoinableQueue<String>) -> Result<(), String> {
    q.join().map_err(|e| e.to_string())
}

/// Waits until the queue is shut down (by another process), then puts.
fn put_after_shutdown(q: JoinableQueue<String>) -> Woke {
    let guard = std::time::Instant::now() + GUARD;
    while !q.is_shutdown() {
        assert!(std::time::Instant::now() < guard, "hang guard: never shut down");
        std::thread::sleep(Duration::from_millis(1));
    }
    match q.put("E".into()) {
        Err(PutError::ShutDown(back)) if back == "E" => Woke::ShutDown,
        other => Woke::Other(format!("{:?}", other.map_err(|e| e.to_string()))),
    }
}

// CPython: test_queue.BaseQueueTestMixin.test_shutdown_put_join and
// test_shutdown_immediate_put_join, with processes: a joiner waits on an
// item; after the shutdown a putter is refused; an immediate shutdown
// drops the item (the joiner returns), a plain one leaves it to be got
// and marked done.
#[test]
fn shutdown_and_join_across_processes() {
    for immediate in [false, true] {
        let q = JoinableQueue::<String>::new(2).expect("queue");
        q.put("Y".into()).expect("put");
        let mut joiner = Process::spawn(join_queue, q.clone()).expect("joiner");
        let mut putter = Process::spawn(put_after_shutdown, q.clone()).expect("putter");
        assert_eq!(q.unfinished(), 1);
        q.shutdown(immediate).expect("shutdown");
        if immediate {
            assert!(matches!(q.try_get(), Err(TryGetError::ShutDown)));
        } else {
            assert_eq!(q.get().expect("left"), "Y");
            q.task_done().expect("task_done");
        }
        assert_eq!(joiner.join_timeout(GUARD).expect("joiner"), Ok(()));
        assert_eq!(putter.join_timeout(GUARD).expect("putter"), Woke::ShutDown);
    }
}

// test_shutdown_immediate_put_join, with puts racing the shutdown: a put
// that was already under way when an immediate shutdown drained the queue
// may land after the draining; it then drains the queue itself, so
// nothing stays behind and `join` returns (Python's puts hold the
// queue's lock, so none can land after the draining).
#[test]
fn puts_racing_an_immediate_shutdown_leave_nothing_behind() {
    for round in 0..20u32 {
        let q = JoinableQueue::<u32>::new(0).expect("queue");
        let putters: Vec<_> = (0..3)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut landed = 0u32;
                    for i in 0.. {
                        match q.put(t * 1_000_000 + i) {
                            Ok(()) => landed += 1,
                            Err(PutError::ShutDown(_)) => return landed,
                            Err(e) => panic!("put: {e}"),
                        }
                    }
                    landed
                })
            })
            .collect();
        // Wait for the putters to be under way (a state, not a time).
        while q.unfinished() < u64::from(10 * (round % 3 + 1)) {
            std::thread::yield_now();
        }
        q.shutdown(true).expect("shutdown");
        let landed: u32 = putters.into_iter().map(|t| t.join().expect("putter")).sum();
        assert!(landed > 0);
        assert!(q.is_empty(), "round {round}: an item stayed behind the draining");
        assert_eq!(q.join_timeout(GUARD), Ok(()), "round {round}");
    }
}
