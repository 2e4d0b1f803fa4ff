//! A ticket counter (scenario 5): 100 customer processes race to buy from a
//! stock of 20 tickets kept in shared memory under one lock. Exactly 20 of
//! them get a ticket, never more; the other 80 are told "sold out".
//!
//! Python:
//!
//! ```python
//! lock = Lock()
//! stock = Value("i", 20, lock=False)
//! def buy(lock, stock):
//!     with lock:                   # check and take in one step
//!         if stock.value == 0:
//!             return None
//!         stock.value -= 1
//!         return 20 - stock.value  # the ticket's number
//! ```
//!
//! In shmproc a [`Mutex<T>`](shmproc::Mutex) is the lock and the value in
//! one: the stock (`[remaining, sold]`) can only be reached through the
//! guard, so no customer can look at it without holding the lock. All
//! customers first wait on an [`Event`] (the doors opening), so they really
//! race. The children run under the default start method (ForkServer).
//!
//! Run it with `cargo run --release --example ticket_counter`.

use std::error::Error;

use shmproc::{Event, Mutex, Process};

/// Tickets in stock.
const TICKETS: u32 = 20;
/// Customer processes.
const CUSTOMERS: u32 = 100;

/// The shared stock: `[remaining, sold]`.
type Stock = Mutex<[u32; 2]>;

/// A customer: waits for the doors to open, then buys one ticket if any is
/// left. Returns its pid and the ticket's number, or `None` if sold out.
fn buy((stock, doors_open): (Stock, Event)) -> (u32, Option<u32>) {
    doors_open.wait();
    let mut guard = stock.lock().expect("lock the stock");
    let [remaining, sold] = &mut *guard;
    if *remaining == 0 {
        return (std::process::id(), None);
    }
    *remaining -= 1;
    *sold += 1;
    (std::process::id(), Some(*sold))
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    println!("start method: {}", shmproc::start_method().as_str());
    println!("stock: {TICKETS} tickets, {CUSTOMERS} customers");

    let stock: Stock = Mutex::new([TICKETS, 0])?;
    let doors_open = Event::new()?;
    let mut customers = (0..CUSTOMERS)
        .map(|_| Process::spawn(buy, (stock.clone(), doors_open.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    println!("all {CUSTOMERS} customers started; the doors open");
    doors_open.set();

    let mut tickets = Vec::new();
    for (n, customer) in customers.iter_mut().enumerate() {
        let (pid, ticket) = customer.join()?;
        match ticket {
            Some(t) => {
                println!("customer {:>3} (pid {pid}): bought ticket {t}", n + 1);
                tickets.push(t);
            }
            None => println!("customer {:>3} (pid {pid}): sold out", n + 1),
        }
    }

    let [remaining, sold] = *stock.lock().map_err(shmproc::Error::from)?;
    println!("sold {sold} tickets, {remaining} left, {} customers turned away", CUSTOMERS as usize - tickets.len());
    tickets.sort_unstable();
    if sold != TICKETS || remaining != 0 || tickets != (1..=TICKETS).collect::<Vec<_>>() {
        return Err(format!("oversold or lost tickets: sold {sold}, left {remaining}, numbers {tickets:?}").into());
    }
    println!("every ticket 1..={TICKETS} sold exactly once: never more than the stock");
    Ok(())
}
