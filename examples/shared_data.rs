//! Shared data (scenario 12): a `Value<f64>` and an `Array<i32>` of 0..10
//! live in shared memory; a child sets the value to pi and negates the
//! array; the parent reads both back.
//!
//! Python:
//!
//! ```python
//! def f(n, a):
//!     n.value = 3.1415927
//!     for i in range(len(a)):
//!         a[i] = -a[i]
//!
//! num = Value('d', 0.0)
//! arr = Array('i', range(10))
//! p = Process(target=f, args=(num, arr)); p.start(); p.join()
//! print(num.value)   # 3.1415927
//! print(arr[:])      # [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
//! ```
//!
//! In shmproc the handles are arguments of a plain `fn` (they travel as
//! descriptors, under every start method). `store` is `num.value = x`,
//! `load` is `num.value`; the array's guard is a slice in shared memory,
//! so the child negates it in place, under the array's lock.
//!
//! Run it with `cargo run --release --example shared_data`.

use shmproc::{Array, Process, Value};

/// The child: sets the value to pi and negates every element.
fn f((num, arr): (Value<f64>, Array<i32>)) {
    num.store(std::f64::consts::PI).expect("store");
    for x in arr.lock().expect("lock").iter_mut() {
        *x = -*x;
    }
}

fn main() -> shmproc::Result<()> {
    shmproc::init();

    let num = Value::new(0.0f64)?;
    let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    println!("before: num = {}, arr = {:?}", num.load()?, arr.to_vec()?);

    let mut p = Process::spawn(f, (num.clone(), arr.clone()))?;
    p.join()?;

    println!("after the child: num = {:.7}", num.load()?);
    println!("after the child: arr = {:?}", arr.to_vec()?);
    Ok(())
}
