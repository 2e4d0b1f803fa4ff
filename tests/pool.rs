//! Pool and ProcessPoolExecutor: API behaviour under the default start
//! method (forkserver), plus a few under Spawn and Fork (Fork from inside a
//! Spawn child's task, which runs single-threaded before `main`).

use std::time::Duration;

use shmproc::{Error, Pool, ProcessPoolExecutor, StartMethod};

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn smoke_apply_and_map() {
    let pool = Pool::new(2).expect("pool");
    assert_eq!(pool.apply(square, 7).expect("apply"), 49);
    assert_eq!(pool.map(square, 0..10u64).expect("map"), (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    let ex = ProcessPoolExecutor::new(2).expect("executor");
    assert_eq!(ex.submit(square, 5).expect("submit").result().expect("result"), 25);
    let _ = (Duration::from_secs(1), StartMethod::Spawn, Error::Timeout);
}
