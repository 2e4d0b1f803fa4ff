//! What a pool worker process runs: the initializer, then the loop that
//! takes task records, runs them and puts result records.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::channel::lane::{Stop, Wait};
use crate::channel::queue::Queue;
use crate::codec;
use crate::error::Error;
use crate::pool::table::{self, Table};
use crate::pool::wire::{self, ResultWriter};
use crate::process::task::TaskFn;
use crate::shm::fnref::FnRef;
use crate::shm::handoff::{self, Received};

/// Type marker of the task queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskRecords;
/// Type marker of the result queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResultRecords;

/// A worker's argument without the initializer: the pool's shared
/// objects and its slot.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerBase {
    pub(crate) tasks: Queue<TaskRecords>,
    pub(crate) results: Queue<ResultRecords>,
    pub(crate) table: Table,
    pub(crate) slot: u32,
    /// Any function of the parent: its executable identity completes the
    /// compact function ids of the task records.
    pub(crate) anchor: FnRef,
    /// Jobs before the worker exits (0: no limit).
    pub(crate) max_tasks: u64,
    /// Whether the worker may take several quick tasks at once (see
    /// `Worker`): not when the parent kills a worker for its running job
    /// (a task timeout, a cancelled executor job), which would take the
    /// jobs it holds down with it.
    pub(crate) batch: bool,
}

/// A worker's argument: the base and the initializer (`IA`: the
/// initializer's argument type; `()` without one).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerArgs<IA> {
    pub(crate) base: WorkerBase,
    /// The initializer and its argument.
    pub(crate) init: Option<Init<IA>>,
}

/// A pool's initializer as it travels to each worker: the trampoline that
/// knows its type ([`init_trampoline`]), its name and captures (as a
/// task's), and its argument.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Init<IA> {
    pub(crate) trampoline: FnRef,
    pub(crate) function: FnRef,
    pub(crate) captures: Vec<u8>,
    pub(crate) arg: IA,
}

/// The signature of every initializer trampoline.
pub(crate) type InitTrampoline<IA> = fn(Init<IA>) -> Result<(), Error>;

/// Makes the initializer `F` again in the worker (its captures decoded)
/// and runs it on the argument.
pub(crate) fn init_trampoline<F, IA>(init: Init<IA>) -> Result<(), Error>
where
    F: TaskFn<IA, ()>,
    IA: 'static,
{
    let f = F::__load(crate::process::task::TOKEN, init.function.to_words(), &init.captures)?;
    f.__call(init.arg);
    Ok(())
}

/// What a pool trampoline receives and gives back (moved, so its buffers
/// are reused from job to job).
#[derive(Debug)]
pub(crate) struct Call {
    /// The user's function (a `fn(A) -> R`).
    pub(crate) function: FnRef,
    /// The task record.
    pub(crate) record: Vec<u8>,
    /// The descriptors that came with the record (its items' decodings
    /// share them).
    pub(crate) fds: Option<Received>,
    /// Where the results go.
    pub(crate) out: ResultWriter,
}

/// The non-generic signature of every pool trampoline, so a worker can name
/// it without knowing `A` and `R`.
pub(crate) type PoolTrampoline = fn(Call) -> Call;

thread_local! {
    /// Whether a task's code is running (the panic hook then records the
    /// message instead of printing it: it goes to the parent).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    /// The last panic's message and location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` as a task's code: a panic becomes its message.
fn run_guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    IN_TASK.with(|t| t.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_TASK.with(|t| t.set(false));
    r.map_err(|payload| {
        LAST_PANIC.with(|l| l.borrow_mut().take()).unwrap_or_else(|| crate::error::panic_message(payload.as_ref()))
    })
}

/// Panics in task code are recorded (for the parent) rather than printed;
/// others print as usual.
fn quiet_task_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_TASK.with(Cell::get) {
            let msg = crate::error::panic_message(info.payload());
            let text = match info.location() {
                Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
                None => msg,
            };
            LAST_PANIC.with(|l| *l.borrow_mut() = Some(text));
        } else {
            previous(info);
        }
    }));
}

/// Makes the user's task again (once per record: its function, and a
/// `task!`'s captures, decoded once), then decodes each item's argument,
/// calls the task and encodes its result into `call.out`; a panic or codec
/// error fails that item alone. One is instantiated per `(F, A, R)` in the
/// parent; a worker finds it by offset.
pub(crate) fn trampoline<F, A, R>(call: Call) -> Call
where
    F: TaskFn<A, R>,
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    let Call { function, record, fds, mut out } = call;
    let fds_ref = fds.as_ref();
    match wire::parse_task(&record) {
        Err(e) => {
            out.begin_item();
            out.fail_item(wire::ITEM_ERROR, &e.to_string());
        }
        Ok(task) => {
            // Decoding captures runs user code (Deserialize impls): guarded.
            let load = || F::__load(crate::process::task::TOKEN, function.to_words(), task.captures);
            let f = match run_guarded(|| handoff::decoding_with(fds_ref, load)) {
                Ok(f) => f,
                Err(m) => Err(Error::Codec { message: format!("the task's captures panicked while decoding: {m}") }),
            };
            for item in task.items {
                out.begin_item();
                let bytes = match (item, &f) {
                    (Err(e), _) => {
                        out.fail_item(wire::ITEM_ERROR, &e.to_string());
                        continue;
                    }
                    (_, Err(e)) => {
                        out.fail_item(wire::ITEM_ERROR, &format!("cannot find the task's function or captures: {e}"));
                        continue;
                    }
                    (Ok(b), Ok(_)) => b,
                };
                let f = f.as_ref().expect("invariant: matched Ok above");
                let out = &mut out;
                let ran = run_guarded(|| -> Result<(), String> {
                    let arg: A = handoff::decoding_with(fds_ref, || codec::decode(bytes))
                        .map_err(|e| format!("the argument did not decode: {e}"))?;
                    let r = f.__call(arg);
                    // Only the encoding collects descriptors, not the task.
                    out.encode_item(&r)
                });
                match ran {
                    Ok(Ok(())) => {}
                    Ok(Err(m)) => out.fail_item(wire::ITEM_CODEC, &m),
                    Err(m) => out.fail_item(wire::ITEM_PANIC, &m),
                }
            }
        }
    }
    // Descriptors no item took are closed here.
    drop(fds);
    Call { function, record, fds: None, out }
}

/// A worker's life (the function its process runs): ignore SIGINT, run
/// the initializer, then take, run and answer jobs until told to stop, the
/// queue closes, the parent disappears, or `max_tasks` jobs are done.
pub(crate) fn worker_main<IA>(args: WorkerArgs<IA>)
where
    IA: DeserializeOwned + 'static,
{
    // A Ctrl-C to the process group is the parent's to handle: it
    // terminates the workers itself.
    let _ = crate::sys::signal::ignore_sigint();
    quiet_task_panics();
    let pid = crate::sys::process::pid();
    let WorkerArgs { base: args, init } = args;
    let Some(slot) = args.table.slot(args.slot as usize) else { return };
    slot[table::PID].store(u64::from(pid), Ordering::SeqCst);
    if args.results.register_producer().is_err() || args.tasks.register_consumer().is_err() {
        return;
    }
    if let Some(init) = init {
        let ran = run_guarded(|| match init.trampoline.resolve::<InitTrampoline<IA>>() {
            Ok(t) => t(init),
            Err(e) => Err(Error::os("resolve the initializer", e)),
        });
        let failed = match ran {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("cannot find the initializer: {e}")),
            Err(m) => Some(format!("the initializer panicked: {m}")),
        };
        if let Some(m) = failed {
            let _ = args.results.put_raw(&wire::init_failed(pid, &m), Wait::Forever);
            return;
        }
    }
    let mut w = Worker {
        args: &args,
        pid,
        slot,
        out: ResultWriter::default(),
        pending: Vec::new(),
        pending_ends: Vec::new(),
        done: 0,
    };
    let mut record = Vec::new();
    let mut fds = Vec::new();
    let (mut more, mut ends) = (Vec::new(), Vec::new());
    // Whether the last tasks were quick: only then does the worker take
    // several records at once (see `Worker`).
    let mut quick = false;
    // A dead worker's word may still say quick.
    slot[table::QUICK].store(0, Ordering::Relaxed);
    let job = &slot[table::JOB];
    loop {
        // The job id is in the slot before the record leaves the queue: a
        // worker killed at any point leaves no job unaccounted for.
        let got = args.tasks.get_raw_then(
            &mut record,
            Wait::Forever,
            &mut |bytes| {
                job.store(wire::job_id(bytes), Ordering::SeqCst);
                crate::sys::failpoint::hit("pool.worker.in_get");
            },
            &mut fds,
        );
        // A cancelled or unreadable task's descriptors close with it.
        let received = Received::some(std::mem::take(&mut fds));
        match got {
            Ok(()) => {}
            Err(Stop::Failed(e)) => {
                eprintln!("shmproc pool worker {pid}: the task queue failed: {e}");
                return;
            }
            // Closed, or the parent is gone.
            Err(_) => return,
        }
        crate::sys::failpoint::hit("pool.worker.after_get");
        // More records already queued, taken in one go, each named in a
        // HELD word of the slot inside the critical section (as the first
        // is in JOB); the first is then named in HELD too, since JOB moves
        // on to each job as it runs.
        more.clear();
        ends.clear();
        let taken = if quick && args.batch && wire::kind(&record).is_ok_and(|k| k == wire::TASK) {
            w.take_more(&mut more, &mut ends)
        } else {
            0
        };
        if taken > 0 {
            slot[table::HELD.start].store(wire::job_id(&record), Ordering::SeqCst);
        }
        let batch_start = Instant::now();
        // A result that cannot be put (the parent is gone, the queue broke)
        // ends the worker at once, its slot still naming the jobs it holds:
        // the supervisor, if any, fails them.
        let mut stop = match w.run(&mut record, received) {
            Step::Stop => true,
            Step::Skipped => false,
            Step::Answered if w.answered(taken > 0) => false,
            Step::Answered => return,
        };
        let mut start = 0;
        for (k, &end) in ends.iter().enumerate() {
            // The clock is read every 4th task (each is quick).
            if k % 4 == 3 && batch_start.elapsed() > FLUSH_AFTER && !w.flush() {
                return;
            }
            let rec = &more[start..end];
            start = end;
            // SeqCst: the Dekker pair of `cancel` (table.rs), as in the hook.
            job.store(wire::job_id(rec), Ordering::SeqCst);
            record.clear();
            record.extend_from_slice(rec);
            match w.run(&mut record, None) {
                Step::Stop => stop = true,
                Step::Skipped => {}
                Step::Answered if w.answered(true) => {}
                Step::Answered => return,
            }
        }
        let was_quick = quick;
        if taken > 0 {
            if !w.flush() {
                return;
            }
            for held in &slot[table::HELD][..=taken] {
                held.store(0, Ordering::SeqCst);
            }
            quick = batch_start.elapsed() < QUICK * (taken as u32 + 1);
        } else {
            quick = batch_start.elapsed() < QUICK;
        }
        // Published for `map` (which packs items while every worker is
        // quick), only where batches are allowed.
        if args.batch && quick != was_quick {
            slot[table::QUICK].store(u64::from(quick), Ordering::Relaxed);
        }
        job.store(0, Ordering::SeqCst);
        slot[table::DONE].store(w.done, Ordering::Relaxed);
        if stop || (args.max_tasks != 0 && w.done >= args.max_tasks) {
            return;
        }
        if record.capacity() > 4 << 20 {
            record = Vec::new();
        }
    }
}

/// A worker takes several task records at once only while its tasks
/// finish within this time each (so a long task strands few others
/// behind it), ...
const QUICK: Duration = Duration::from_micros(20);
/// ... and puts the results it has gathered once this long has passed
/// since it took them (so a long task does not hold back the results of
/// the quick ones before it for long), looking before every 4th task: a
/// clock read per task cost the workers 4 % of their time.
const FLUSH_AFTER: Duration = Duration::from_micros(100);

/// What running one task record did.
enum Step {
    /// Its result record is in the writer.
    Answered,
    /// Nothing to answer: a cancelled job.
    Skipped,
    /// A STOP record: the worker exits once its batch is done.
    Stop,
}

/// A worker's loop state. Taking several records at once (a batch: the
/// first through `get_raw_then`, the others through one `get_raw_more`)
/// saves a lock hold and a wake-up per task on both queues: the results of
/// a batch are gathered and put together. Every job of a batch is named
/// in a HELD word of the slot from inside the get critical section until
/// its result is put, so a worker killed anywhere leaves none unaccounted
/// for (the supervisor fails them all); JOB names the one running.
struct Worker<'a> {
    args: &'a WorkerBase,
    pid: u32,
    slot: &'a table::Slot,
    out: ResultWriter,
    /// Result records gathered in a batch, one after the other, and where
    /// each ends.
    pending: Vec<u8>,
    pending_ends: Vec<usize>,
    /// Jobs answered.
    done: u64,
}

impl Worker<'_> {
    /// Takes up to as many more records as the slot's HELD words hold
    /// (fewer if `max_tasks` is near), naming each in one; none unless the
    /// queue holds more than every worker could take at once, so a batch
    /// never leaves another worker idle while its tasks wait behind a long
    /// one (a short queue goes one task per worker, in order).
    fn take_more(&self, more: &mut Vec<u8>, ends: &mut Vec<usize>) -> usize {
        let mut max = table::HELD.len() - 1;
        if self.args.tasks.qsize() <= self.args.table.workers() * table::HELD.len() {
            return 0;
        }
        if self.args.max_tasks != 0 {
            let left = self.args.max_tasks.saturating_sub(self.done + 1);
            max = max.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let held = &self.slot[table::HELD][1..];
        let mut k = 0;
        // Only tasks: a STOP record stays for a worker that takes it first
        // (each STOP retires one worker; one taken in a batch would retire
        // this worker in another's place, and that one would never stop).
        let mut hook = |bytes: &[u8]| {
            let task = wire::kind(bytes).is_ok_and(|kind| kind == wire::TASK || kind == wire::SPILLED);
            let Some(word) = held.get(k).filter(|_| task) else { return false };
            word.store(wire::job_id(bytes), Ordering::SeqCst);
            k += 1;
            crate::sys::failpoint::hit("pool.worker.in_get_more");
            true
        };
        self.args.tasks.get_raw_more(more, ends, max, &mut hook).unwrap_or(0)
    }

    /// Runs one task record (taken from the queue, with the descriptors
    /// that came with it), leaving its result record in `self.out`.
    fn run(&mut self, record: &mut Vec<u8>, received: Option<Received>) -> Step {
        let (args, pid) = (self.args, self.pid);
        let id = wire::job_id(record);
        match wire::kind(record) {
            Ok(wire::STOP) => return Step::Stop,
            Ok(wire::SPILLED) => {
                let mut full = Vec::new();
                if let Err(e) = crate::channel::spill::spill_in(wire::spill_reference(record), &mut full) {
                    self.out.start(id, pid);
                    self.out.begin_item();
                    self.out.fail_item(wire::ITEM_ERROR, &format!("cannot read the spilled task: {e}"));
                    return Step::Answered;
                }
                *record = full;
            }
            _ => {}
        }
        // SeqCst: pairs with the parent's store of the entry, then load of
        // the slots, in `cancel` (table.rs).
        if args.table.cancel_entry(id).load(Ordering::SeqCst) == id {
            return Step::Skipped;
        }
        let out = &mut self.out;
        out.start(id, pid);
        match wire::parse_task(record) {
            Ok(task) => {
                let tramp = args.anchor.with_id(task.trampoline).resolve::<PoolTrampoline>();
                let function = args.anchor.with_id(task.function);
                match tramp {
                    Ok(tramp) => {
                        let call = tramp(Call {
                            function,
                            record: std::mem::take(record),
                            fds: received,
                            out: std::mem::take(out),
                        });
                        *record = call.record;
                        *out = call.out;
                    }
                    Err(e) => {
                        out.begin_item();
                        out.fail_item(wire::ITEM_ERROR, &format!("cannot find the pool trampoline: {e}"));
                    }
                }
            }
            Err(e) => {
                out.begin_item();
                out.fail_item(wire::ITEM_ERROR, &Error::to_string(&e));
            }
        }
        Step::Answered
    }

    /// Puts (or, in a batch, gathers) the result record in `self.out`;
    /// `false` if the worker should stop.
    fn answered(&mut self, batch: bool) -> bool {
        self.done += 1;
        let plain = self.out.fds_empty();
        let rec = self.out.finish();
        if batch && plain && rec.len() <= self.args.results.max_inline() {
            self.pending.extend_from_slice(rec);
            self.pending_ends.push(self.pending.len());
            // Nothing was lent (no descriptors): nothing to give back.
            drop(self.out.take_fds());
            return true;
        }
        // In order: the gathered ones first.
        if !self.flush() {
            return false;
        }
        crate::sys::failpoint::hit("pool.worker.before_result");
        if !answer(&self.args.results, &mut self.out) {
            return false;
        }
        crate::sys::failpoint::hit("pool.worker.after_result");
        true
    }

    /// Puts the gathered result records, as many per lock hold as fit (the
    /// rest waiting for room one at a time); `false` if the worker should
    /// stop.
    fn flush(&mut self) -> bool {
        if self.pending_ends.is_empty() {
            return true;
        }
        crate::sys::failpoint::hit("pool.worker.before_result");
        let results = &self.args.results;
        let mut first = 0;
        while first < self.pending_ends.len() {
            let from = if first == 0 { 0 } else { self.pending_ends[first - 1] };
            match results.put_raw_many(&self.pending, from, &self.pending_ends[first..]) {
                Ok(0) => {
                    // No room now (or the lock stayed busy): wait for room
                    // for the next one.
                    let rec = &self.pending[from..self.pending_ends[first]];
                    if send(results, rec, &[], handoff::Undo::default()) {
                        first += 1;
                    } else {
                        return false;
                    }
                }
                Ok(n) => first += n,
                Err(Stop::Failed(e)) => {
                    eprintln!("shmproc pool worker: the result queue failed: {e}");
                    return false;
                }
                Err(_) => return false,
            }
        }
        self.pending.clear();
        self.pending_ends.clear();
        crate::sys::failpoint::hit("pool.worker.after_result");
        true
    }
}

/// Puts the finished result record (spilled if too large) with the
/// descriptors its results hold; `false` if the worker should stop (the
/// parent is gone or the queue broke).
fn answer(results: &Queue<ResultRecords>, out: &mut ResultWriter) -> bool {
    let (fds, undo) = out.take_fds();
    let max = if fds.is_empty() { results.max_inline() } else { results.max_inline_parcel() };
    let (id, too_large) = {
        let rec = out.finish();
        (wire::job_id(rec), rec.len() > max)
    };
    let mut spilled = None;
    if too_large {
        match crate::channel::spill::spill_out(out.finish(), results.spill_owner()) {
            Ok(reference) => spilled = Some(wire::spilled(id, &reference)),
            Err(e) => {
                out.start(id, crate::sys::process::pid());
                out.begin_item();
                out.fail_item(wire::ITEM_ERROR, &format!("the result is too large to return: {e}"));
                undo.run();
                return send(results, out.finish(), &[], handoff::Undo::default());
            }
        }
    }
    let rec: &[u8] = match &spilled {
        Some(s) => s,
        None => out.finish(),
    };
    let sent = send(results, rec, &fds, undo);
    if !sent && let Some(s) = &spilled {
        crate::channel::spill::discard(wire::spill_reference(s));
    }
    sent
}

/// Puts one result record; on failure gives back what its encoding took.
fn send(results: &Queue<ResultRecords>, rec: &[u8], fds: &[std::os::fd::OwnedFd], undo: handoff::Undo) -> bool {
    match results.put_raw_parcel(rec, fds, Wait::Forever) {
        Ok(()) => {
            drop(undo);
            true
        }
        Err(Stop::Failed(e)) => {
            undo.run();
            eprintln!("shmproc pool worker: the result queue failed: {e}");
            false
        }
        Err(_) => {
            undo.run();
            false
        }
    }
}
