//! One process per input: a child for each of 1..=5 computes a square; the
//! parent joins them all and prints each child's pid, exit code and result.
//!
//! Python:
//!
//! ```python
//! procs = [Process(target=square, args=(i,)) for i in range(1, 6)]
//! for p in procs: p.start()
//! for p in procs: p.join()
//! print("all finished")
//! ```
//!
//! Here `join` also hands back what the child's function returned.
//!
//! Run it with `cargo run --release --example one_process_per_input`.

use shmproc::Process;

fn square(x: u64) -> u64 {
    println!("child  pid {}: computing {x} * {x}", std::process::id());
    x * x
}

fn main() -> shmproc::Result<()> {
    shmproc::init();
    println!("parent pid {}", std::process::id());

    let mut children = Vec::new();
    for i in 1..=5 {
        children.push(Process::spawn(square, i)?);
    }
    for (i, p) in (1..=5).zip(&mut children) {
        let result = p.join()?;
        let exitcode = p.exitcode().expect("a joined child has exited").python();
        println!("{} pid {}: exitcode {exitcode}, square({i}) = {result}", p.name(), p.pid());
    }
    println!("all finished");
    Ok(())
}
