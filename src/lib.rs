//! # shmproc
//!
//! What Python's `multiprocessing` gives Python programs, for Rust, built on
//! shared memory: data moves through `mmap`ed segments, waiting happens on
//! futexes, and every object survives the death of any process using it.
//!
//! This release has processes with the three start methods ([`Process`],
//! [`StartMethod`], [`Context`]), pools of worker processes ([`Pool`],
//! [`ProcessPoolExecutor`]), queues ([`Queue`], [`JoinableQueue`],
//! [`SpscRing`]), robust synchronisation ([`Mutex`],
//! [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Condvar`],
//! [`Event`], [`Barrier`]), communication ([`Pipe`], [`SpscRing`],
//! [`ByteRing`]), shared data ([`Value`], [`Array`], [`RawValue`],
//! [`RawArray`]) and their foundation: shared-memory [`Segment`]s
//! (named or anonymous), typed placement of pointer-free state ([`Shared`],
//! [`Arena`], [`ShmSafe`]) and stale-object cleanup ([`cleanup_stale`]),
//! and a manager: a server process that owns dicts and lists used through
//! proxies ([`Manager`], [`DictProxy`], [`ListProxy`]). [`inspect`] looks
//! at objects from outside (read-only); the `shmproc` binary is its command
//! line (`shmproc ls`, `inspect NAME`, `clean`, `bench`).
//!
#![cfg_attr(feature = "serde", doc = "```")]
#![cfg_attr(not(feature = "serde"), doc = "```ignore")]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> shmproc::Result<()> {
//!     shmproc::init(); // first line of main: lets re-executed children take their role
//!     let mut children = (1..=3).map(|i| shmproc::Process::spawn(square, i)).collect::<Result<Vec<_>, _>>()?;
//!     let squares = children.iter_mut().map(|p| p.join()).collect::<Result<Vec<_>, _>>()?;
//!     assert_eq!(squares, [1, 4, 9]);
//!     Ok(())
//! }
//! ```
//!
//! ## From Python
//!
//! | Python | shmproc |
//! |---|---|
//! | `if __name__ == "__main__":` | [`shmproc::init()`](init) first in `main` |
//! | `Process(target=f, args=(a,)).start()` | [`Process::spawn(f, a)`](Process::spawn) (any [`TaskFn`]; several args in a tuple or struct) |
//! | `functools.partial(f, a)`, `lambda x: ...` as a task | [`task!`]`((a) \|x: T\| ...)`, capture-free closures, any [`TaskFn`] |
//! | pickling a socket or file into a `Queue`, `Pipe`, `Process` or pool task | [`Fd`] / `#[serde(with = "shmproc::fd")]` ([`fd`]) |
//! | a `Queue` or `Lock` inside a queued item | handles travel inside `Queue`, channel and `Pipe` items |
//! | `Process(name=.., daemon=True)` | [`Process::builder()`](Process::builder)`.name(..).daemon(true)` |
//! | subclass `Process`, override `run()` | implement [`Task`], then [`Process::start(task)`](Process::start) |
//! | `p.join()`, `p.join(timeout)` | [`p.join()`](Process::join) returns `f`'s result or a [`JoinError`]; [`join_timeout`](Process::join_timeout), [`join_deadline`](Process::join_deadline) ([`JoinTimeoutError::Timeout`] where Python returns `None`) |
//! | `p.exitcode`, `p.is_alive()`, `p.pid` | [`exitcode()`](Process::exitcode), [`is_alive()`](Process::is_alive), [`pid()`](Process::pid) |
//! | `p.terminate()`, `p.kill()`, `p.interrupt()`, `p.close()` | [`terminate()`](Process::terminate), [`kill()`](Process::kill), [`interrupt()`](Process::interrupt) (SIGINT), [`close()`](Process::close) (takes the handle; a running child comes back in [`CloseError::Running`]) |
//! | `set_start_method("spawn")`, `get_start_method()` | [`set_start_method(StartMethod::Spawn)`](set_start_method), [`start_method()`](start_method) (in a child: the method it was started with) |
//! | `get_context("fork")` | [`Context::new(StartMethod::Fork)`](Context::new) |
//! | `current_process()`, `parent_process()`, `active_children()`, `cpu_count()` | [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`] |
//! | `Pool(n)`, `Pool(n, initializer, initargs, maxtasksperchild)` | [`Pool::new(n)`](Pool::new), [`Pool::builder()`](Pool::builder)`.processes(n).initializer(f, arg).maxtasksperchild(k)` |
//! | `pool.apply(f, (a,))`, `pool.apply_async(f, (a,), callback, error_callback)` | [`apply`](Pool::apply), [`apply_async`](Pool::apply_async) → [`AsyncResult`] (`get`, `get_timeout`, `get_deadline`, `ready`, `wait`, `wait_timeout`, `wait_deadline`, `successful`), [`apply_async_with`](Pool::apply_async_with) |
//! | `pool.map(f, it, chunksize)`, `imap`, `imap_unordered` | [`map`](Pool::map), [`map_chunked`](Pool::map_chunked), [`imap`](Pool::imap) (lazy: a bounded window), [`imap_unordered`](Pool::imap_unordered), [`imap_chunked`](Pool::imap_chunked), [`imap_unordered_chunked`](Pool::imap_unordered_chunked); chunksize 0 is [`Error::InvalidArgument`]; an input iterator that panics fails the call with [`Error::InputPanicked`] |
//! | `pool.map_async(f, it, chunksize, callback, error_callback)`, `starmap`, `starmap_async` | [`map_async`](Pool::map_async), [`map_async_chunked`](Pool::map_async_chunked), [`map_async_with`](Pool::map_async_with), [`map_async_chunked_with`](Pool::map_async_chunked_with) → [`AsyncResult`]`<Vec<R>>`; starmap: `map`/`map_async` over tuples |
//! | `pool.close()`, `pool.join()`, `pool.terminate()`, `with Pool() as p:` | [`close`](Pool::close), [`join`](Pool::join), [`terminate`](Pool::terminate); drop terminates |
//! | `ProcessPoolExecutor(max_workers)` | [`ProcessPoolExecutor::new(n)`](ProcessPoolExecutor::new), [`builder()`](ProcessPoolExecutor::builder); workers start as submissions find none idle, up to `max_workers` ([`worker_pids`](ProcessPoolExecutor::worker_pids)) |
//! | `ex.map(f, it, timeout=t)`, `ex.terminate_workers()`, `ex.kill_workers()` | [`map_timeout`](ProcessPoolExecutor::map_timeout), [`map_deadline`](ProcessPoolExecutor::map_deadline) → [`MapUntil`] (a last item `Err(TaskTimeoutError::Timeout)`), [`terminate_workers`](ProcessPoolExecutor::terminate_workers), [`kill_workers`](ProcessPoolExecutor::kill_workers) |
//! | `ex.submit(f, a)`, `ex.map(f, it, chunksize=k)`, `ex.shutdown(wait, cancel_futures=c)` | [`submit`](ProcessPoolExecutor::submit) → [`TaskFuture`], [`map`](ProcessPoolExecutor::map), [`shutdown`](ProcessPoolExecutor::shutdown); drop is `shutdown(true, false)` |
//! | `fut.result(timeout)`, `done()`, `running()`, `cancel()`, `add_done_callback(fn)` | [`result`](TaskFuture::result), [`result_timeout`](TaskFuture::result_timeout), [`result_deadline`](TaskFuture::result_deadline), [`done`](TaskFuture::done), [`running`](TaskFuture::running), [`cancel`](TaskFuture::cancel), [`add_done_callback`](TaskFuture::add_done_callback), [`exception`](TaskFuture::exception) (`exception(timeout)`: [`exception_timeout`](TaskFuture::exception_timeout), [`exception_deadline`](TaskFuture::exception_deadline); [`Cancelled`] for `CancelledError`) |
//! | `as_completed(fs)`, `as_completed(fs, timeout)` | [`as_completed`], [`as_completed_timeout`], [`as_completed_deadline`] (a last item `Err(TimedOut)` where Python raises `TimeoutError`); a future listed twice is yielded once |
//! | `wait(fs, return_when=FIRST_COMPLETED)`, `wait(fs, timeout, ...)` | [`wait`] with [`ReturnWhen`], [`wait_timeout`], [`wait_deadline`] ([`TimedOut`]; the futures' [`done`](TaskFuture::done) tells which finished) |
//! | an exception raised by `res.get()`, `fut.result()` | [`TaskError`] (`Panicked`, `WorkerDied`, `Cancelled`, ...) |
//! | `BrokenProcessPool`, `KeyboardInterrupt` in `map` | [`Error::BrokenPool`], [`Error::Interrupted`] |
//! | `Lock()`, `RLock()` | [`Lock::new()`](Lock::new), [`RLock::new()`](RLock::new): `acquire`, `release`, `try_acquire` (`acquire(False)`), `acquire_timeout` (`acquire(timeout=t)`), `lock()` guard (`with lock:`) |
//! | `Lock` + `Value` under it | [`Mutex<T>`](Mutex): the data lives inside the lock |
//! | `Value('d', 0.0)`, `v.value`, `v.value = x`, `with v.get_lock():` | [`Value::new(0.0)`](Value::new), [`load`](Value::load) (lock-free up to 64 bytes), [`store`](Value::store), [`lock`](Value::lock) guard |
//! | `Array('i', range(10))`, `a[i]`, `a[:]`, `a[:] = xs` | [`Array::from_slice`], [`Array::new(n)`](Array::new) (zeroes), [`load(i)`](Array::load) / [`store(i, x)`](Array::store), [`to_vec`](Array::to_vec), [`copy_from_slice`](Array::copy_from_slice), [`lock`](Array::lock) (a slice in shared memory) |
//! | `RawValue('q', 0)`, `RawArray('f', n)` | [`RawValue`], [`RawArray`]: no lock, each access one atomic load or store (1, 2, 4 or 8-byte `T`), plus `fetch_add` |
//! | `Semaphore(n)`, `BoundedSemaphore(n)`, `with sem:` | [`Semaphore::new(n)`](Semaphore::new), [`BoundedSemaphore::new(n)`](BoundedSemaphore::new), [`guard`](Semaphore::guard) → [`SemaphoreGuard`] ([`try_guard`](Semaphore::try_guard), [`guard_timeout`](Semaphore::guard_timeout), [`guard_deadline`](Semaphore::guard_deadline)) |
//! | `Condition(lock)` | [`Condvar`] with a [`Mutex`], [`Lock`] or [`RLock`] guard ([`CondvarGuard`]): `wait(guard)`, `wait_timeout(guard, d)` (`wait(timeout)`; its `False` is [`WaitTimeoutError::Timeout`]), [`wait_while`](Condvar::wait_while) (`wait_for(pred)` with the predicate negated), [`wait_while_timeout`](Condvar::wait_while_timeout), [`wait_while_deadline`](Condvar::wait_while_deadline), `notify_one`, [`notify(n)`](Condvar::notify) (exactly n), `notify_all` |
//! | `Event()`, `Barrier(n)`, `Barrier(n, action, timeout)` | [`Event::new()`](Event::new) (`e.wait(t)` returning `False` is [`TimedOut`]), [`Barrier::new(n)`](Barrier::new), [`Barrier::builder(n)`](Barrier::builder)`.action(f).timeout(d).build()` ([`BarrierBuilder`]) |
//! | `Queue(maxsize)` | [`Queue::new(maxsize)`](Queue::new): `put`, `get`, `try_put`/`try_get` (`put_nowait`/`get_nowait`), `put_timeout`/`get_timeout`, `qsize`, `is_empty`, `is_full`, `close` |
//! | `q.shutdown(immediate)`, `q.is_shutdown`, `queue.ShutDown` (3.13) | [`shutdown`](Queue::shutdown), [`is_shutdown`](Queue::is_shutdown), [`PutError::ShutDown`] (with the item), [`GetError::ShutDown`]: for every process |
//! | `JoinableQueue(maxsize)` | [`JoinableQueue::new(maxsize)`](JoinableQueue::new): also `task_done`, `join`, `join_timeout` |
//! | `queue.Full`, `queue.Empty` | [`TryPutError::Full`] (with the item back), [`TryGetError::Empty`] |
//! | `a, b = Pipe()`; `r, w = Pipe(duplex=False)` | [`Pipe::new()`](Pipe::new), [`Pipe::simplex()`](Pipe::simplex): [`Connection`]s with `send`, `recv`, `send_bytes`, `recv_bytes`, `poll`, `close` |
//! | `c.recv_bytes_into(buf, offset)`, `BufferTooShort`, `c.send_bytes(buf, offset, size)` | [`recv_bytes_into_slice`](Connection::recv_bytes_into_slice) ([`RecvIntoError::BufferTooShort`] keeps the message), [`send_bytes_range`](Connection::send_bytes_range) |
//! | `SharedMemory(name, create=True, size=n)` | [`Segment::create(name, n)`](Segment::create) (size 0 is [`Error::InvalidArgument`]) |
//! | `SharedMemory(name)` | [`Segment::open(name)`](Segment::open) (header checked) |
//! | `SharedMemory(name)` on a foreign object | [`Segment::open_raw(name, access)`](Segment::open_raw) |
//! | `shm.buf[a:b] = data` | [`seg.write_at(a, data)`](Segment::write_at) |
//! | `bytes(shm.buf[a:b])` | [`seg.read_at(a, buf)`](Segment::read_at) |
//! | `shm.unlink()` | [`Segment::unlink(name)`](Segment::unlink), or the creator's drop |
//! | resource tracker | [`cleanup_stale()`](cleanup_stale): removes only what dead creators left |
//! | `m = Manager()`, `m.shutdown()`, `with Manager() as m:` | [`Manager::start()`](Manager::start), [`shutdown`](Manager::shutdown); drop stops it |
//! | `BaseManager(address=...)`, `.connect()` | [`Manager::builder()`](Manager::builder)`.name(..)`, [`Manager::connect(name)`](Manager::connect) |
//! | `d = m.dict()`: `d[k] = v`, `d.get(k)`, `del d[k]`, `k in d`, `len(d)`, `keys()`, `values()`, `items()`, `update(mapping)`, `clear()` | [`m.dict()`](Manager::dict) → [`DictProxy`]: [`insert`](DictProxy::insert), [`get`](DictProxy::get), [`remove`](DictProxy::remove), [`contains_key`](DictProxy::contains_key), [`len`](DictProxy::len), [`keys`](DictProxy::keys), [`values`](DictProxy::values), [`items`](DictProxy::items), [`extend`](DictProxy::extend), [`clear`](DictProxy::clear) |
//! | `with lock: d[k] += 1` | [`d.update(&k, add, 1)`](DictProxy::update): atomic on the server, no lock |
//! | `l = m.list()`: `append`, `extend`, `l[i]`, `l[i] = v`, `pop()`, `pop(i)`, `insert`, `len`, `list(l)`, `clear` | [`m.list()`](Manager::list) → [`ListProxy`]: [`push`](ListProxy::push), [`extend`](ListProxy::extend), [`get`](ListProxy::get), [`set`](ListProxy::set), [`pop`](ListProxy::pop), [`remove`](ListProxy::remove), [`insert`](ListProxy::insert), [`len`](ListProxy::len), [`to_vec`](ListProxy::to_vec), [`clear`](ListProxy::clear) |
//! | `with lock: d[k] = f(d.get(k))` with a lambda | [`DictProxy::update_with`] |
//! | `m.Namespace()` | [`Manager::namespace`] → [`NamespaceProxy`] |
//! | `m.Value(code, v)`, `m.Array(code, seq)` | [`Manager::value`] → [`ValueProxy`], [`Manager::array`] → [`ArrayProxy`] |
//! | `BaseManager.register(typeid, callable, exposed)` | [`Served`] + [`Manager::serve`] → [`ObjectProxy`] |
//! | `d['inner'] = m.list()` | a proxy as a value: `DictProxy<String, ListProxy<T>>` |
//! | `m.Queue()`, `m.JoinableQueue()` | [`Manager::queue`], [`Manager::joinable_queue`] → [`QueueProxy`] |
//! | `m.Lock()`, `m.RLock()` | [`Manager::lock`], [`Manager::rlock`] → [`LockProxy`], [`RLockProxy`] |
//! | `m.Semaphore()`, `m.BoundedSemaphore()` | [`Manager::semaphore`], [`Manager::bounded_semaphore`] → [`SemaphoreProxy`] |
//! | `m.Event()`, `m.Condition()`, `m.Barrier()` | [`Manager::event`], [`Manager::condition`], [`Manager::barrier`] → [`EventProxy`], [`ConditionProxy`], [`BarrierProxy`] |
//! | `BrokenPipeError` from a proxy of a dead manager | [`Error::ManagerDead`], at once and for good |
//! | `ls /dev/shm`, `resource_tracker` warnings | [`inspect::objects()`](inspect::objects), [`inspect::describe(name)`](inspect::describe); `shmproc ls`, `shmproc inspect NAME`, `shmproc clean` |
//!
//! Locks have owners: a lock held by a process that dies (any signal,
//! SIGKILL included) or by a thread that exits without releasing it is taken
//! over by the next waiter, which learns of it ([`LockError::OwnerDied`] for
//! [`Mutex`]), where Python's `Lock` would make every waiter hang forever.
//! Consequently `release` must come from the thread that acquired.
//!
//! Differences that matter: a child's function is a [`TaskFn`]: a fn
//! item or pointer `fn(A) -> R` (under Spawn and ForkServer the child finds
//! it by its address in the binary), a closure that captures nothing, or a
//! [`task!`] that names its captures (they travel encoded, like Python's
//! `functools.partial` arguments); its argument and result travel encoded
//! (serde + postcard), and
//! `join` returns the result or a [`JoinError`] that says why there is
//! none (panic message, signal, exit code). A child killed mid-task
//! never hangs its parent; a parent killed with SIGKILL takes its children
//! with it.
//!
//! Pools never hang on a dead worker: a task whose worker is killed fails
//! with [`TaskError::WorkerDied`] (naming the signal) and the [`Pool`]
//! starts a replacement; a task that panics fails alone with
//! [`TaskError::Panicked`]; an argument that cannot be encoded is an error
//! of the submitting call; Ctrl-C during a pool call terminates the pools
//! and returns [`Error::Interrupted`].
//!
//! ## Waiting: one convention
//!
//! Every call that can wait comes in up to four forms: `x()` waits as long
//! as it takes, `try_x()` never waits, `x_timeout(d)` waits at most `d`
//! (`Duration::MAX` means no limit) and `x_deadline(t)` waits until the
//! instant `t`. Each returns `Result<_, E>` whose error type names exactly
//! what can happen to that form: "busy" only for `try_x`, "timed out" only
//! for the bounded forms, and an item that was not sent comes back inside
//! the error. Every error converts into [`Error`], so `?` works in a
//! function returning [`Result`].
//!
//! | object | `x()` | `try_x()` | `x_timeout(d)`, `x_deadline(t)` |
//! |---|---|---|---|
//! | [`Mutex`], [`Value`], [`Array`]: `lock` | [`LockError`] | [`TryLockError`] | [`LockTimeoutError`] |
//! | [`Lock`], [`RLock`]: `acquire`, `lock` | [`AcquireError`] | [`TryAcquireError`] | [`AcquireTimeoutError`] |
//! | [`Semaphore`], [`BoundedSemaphore`]: `acquire` | cannot fail | [`WouldBlock`] | [`TimedOut`] |
//! | [`Event`]: `wait` | cannot fail | | [`TimedOut`] |
//! | [`Barrier`]: `wait` (bounded by the barrier's default timeout, if any: [`BarrierBuilder::timeout`]) | [`BarrierError`] | | [`BarrierTimeoutError`] (a timeout breaks the barrier, as in Python) |
//! | [`Condvar`]: `wait(guard)`, `wait_while(guard, condition)` (a [`CondvarGuard`]: of a [`Mutex`], [`Lock`] or [`RLock`]) | [`LockError`] | | [`WaitTimeoutError`] (the guard comes back on a timeout too) |
//! | [`Semaphore`], [`BoundedSemaphore`]: `guard` (a [`SemaphoreGuard`]) | cannot fail | [`WouldBlock`] | [`TimedOut`] |
//! | [`Queue`], [`JoinableQueue`]: `put(item)` | [`PutError`] (the item back) | [`TryPutError`] (the item back) | [`PutTimeoutError`] (the item back) |
//! | [`Queue`], [`JoinableQueue`]: `get` | [`GetError`] | [`TryGetError`] | [`GetTimeoutError`] |
//! | [`JoinableQueue`]: `join` | [`QueueJoinError`] | | [`QueueJoinTimeoutError`] |
//! | [`Connection`]: `send(value)`, `send_bytes` | [`SendError`] (the value back) | [`TrySendError`] (the value back) | [`SendTimeoutError`] (the value back) |
//! | [`Connection`]: `recv`, `recv_bytes` | [`RecvError`] | [`TryRecvError`] | [`RecvTimeoutError`] |
//! | [`Connection`]: `recv_bytes_into_slice(buf, offset)` | [`RecvIntoError`] (a message too long comes back whole) | | |
//! | [`channel::Sender`]: `send(item)` | [`channel::SendError`] (the item back) | [`channel::TrySendError`] (the item back) | [`channel::SendTimeoutError`] (the item back) |
//! | [`channel::Receiver`]: `recv` | [`channel::RecvError`] | [`channel::TryRecvError`] | [`channel::RecvTimeoutError`] |
//! | [`SpscRing`] ([`Producer`], [`Consumer`]): `push(value)`; `pop` | | [`PushError`] (the value back); [`PopError`] | |
//! | [`MpmcRing`] ([`MpmcProducer`], [`MpmcConsumer`]): `push(value)`, `reserve`; `pop`, `peek` | | [`MpmcPushError`] (the value back); [`MpmcPopError`] | |
//! | [`ByteRing`] ([`ByteProducer`], [`ByteConsumer`]): `push(&msg)`, `reserve(len)`; `pop`, `pop_into`, `peek` | | [`BytePushError`] (by reference: nothing back); [`BytePopError`] | |
//! | [`Process`]: `join` | [`JoinError`] | | [`JoinTimeoutError`] (the child goes on) |
//! | [`AsyncResult`] (`apply_async`, `map_async`): `get`; [`TaskFuture`]: `result` | [`TaskError`] | | [`TaskTimeoutError`] (the task goes on) |
//! | [`TaskFuture`]: `exception` | [`Cancelled`] (`Ok(None)`: no failure) | | [`ExceptionTimeoutError`] (the task goes on) |
//! | [`AsyncResult`]: `wait` | cannot fail | | [`TimedOut`] |
//! | [`wait`] (futures) | cannot fail | | [`TimedOut`] |
//! | [`as_completed`] | yields each future | | [`as_completed_timeout`], [`as_completed_deadline`]: a last item `Err(`[`TimedOut`]`)` |
//! | [`Imap`] (`imap`, `imap_chunked`, executor `map`): each item | [`TaskError`] | | executor [`map_timeout`](ProcessPoolExecutor::map_timeout), [`map_deadline`](ProcessPoolExecutor::map_deadline): [`MapUntil`], each item a [`TaskTimeoutError`], a last `Timeout` |
//! | [`Pool`]: `join` | [`PoolJoinError`] | | |
//!
//! Queues, typed channels and connections iterate: [`Queue::iter`] (and
//! `for x in &queue`) blocks and ends when the queue is closed and drained
//! or its producers are gone; [`Queue::try_iter`] takes what is there now.
//! [`Connection::iter::<T>`](Connection::iter) blocks and ends when the
//! other end is closed or gone and the pipe is drained;
//! [`Connection::try_iter`] takes what is there now; `for msg in &conn`
//! yields the messages' bytes ([`Connection::iter_bytes`]). A typed
//! channel's [`Receiver::iter`](channel::Receiver::iter) ends once every
//! sender is gone and the channel is drained. Each item is a
//! `Result`: a message that does not decode is an `Err`, and the iteration
//! goes on.
//!
//! The rings never wait: their `push` and `pop` are the `try_x` form,
//! under the names rtrb and crossbeam's `ArrayQueue` give it (there is no
//! blocking form to tell them from; `Full` and `Empty` say "not now"). To
//! wait, retry with a backoff, or use a [`Queue`] (a [`Pipe`] for byte
//! messages). The batch calls of the SPSC and MPMC rings (`push_slice`,
//! `pop_into`) return how many values moved, 0 included; the byte ring's
//! `pop_into` pops one message into a buffer, with [`BytePopError`].
//! Ring consumers have only [`Consumer::try_iter`],
//! [`MpmcConsumer::try_iter`] and [`ByteConsumer::try_iter`] (also
//! `for v in &mut consumer`): what is there now; a corrupt ring's failure
//! is yielded once, then the iteration ends.
//!
//! ```
//! use shmproc::{Lock, TryAcquireError};
//! use std::time::Duration;
//!
//! let lock = Lock::new()?;
//! let _held = lock.lock()?;                            // waits
//! match lock.try_lock() {                              // never waits
//!     Err(TryAcquireError::WouldBlock) => {}           // busy: the only "not now"
//!     other => panic!("{other:?}"),
//! }
//! let sem = shmproc::Semaphore::new(0)?;
//! assert_eq!(sem.acquire_timeout(Duration::from_millis(1)), Err(shmproc::TimedOut));
//! # Ok::<(), shmproc::Error>(())
//! ```
//!
//! Guards are `#[must_use]`: `let _ = m.lock()?;` would unlock at once.
//!
//! Queries that never wait stay plain: [`AsyncResult::ready`],
//! [`TaskFuture::done`], [`Process::is_alive`], [`Process::exitcode`].
//! Dropping a [`Process`], an [`AsyncResult`] or a [`TaskFuture`] leaves
//! its work running (only the result is lost); dropping an [`Imap`]
//! cancels its tasks not yet started, dropping a [`Pool`] terminates it
//! and dropping a [`ProcessPoolExecutor`] waits for its tasks, so these
//! three are `#[must_use]`.
//!
//! ## Async
//!
//! With the `async` feature (on by default), the calls that wait have
//! async twins named `x_async`, with the blocking call's error type:
//! [`Queue::put_async`], [`Queue::get_async`],
//! [`JoinableQueue::join_async`], [`channel::Sender::send_async`],
//! [`channel::Receiver::recv_async`] (and the receiver is a
//! `futures_core::Stream`), [`Connection::send_async`],
//! [`Connection::recv_async`], [`Connection::send_bytes_async`],
//! [`Connection::recv_bytes_async`], [`Process::join_async`],
//! [`Mutex::lock_async`], [`Value::lock_async`], [`Lock::acquire_async`]
//! and [`Lock::lock_async`] (and [`RLock`]'s), [`Semaphore::acquire_async`],
//! [`Event::wait_async`], [`Barrier::wait_async`]; the pool's
//! [`TaskFuture`] and [`AsyncResult`] are `IntoFuture` (`fut.await`), and
//! [`Imap::into_stream`] and [`AsCompleted::into_stream`] are streams.
//! [`connection::wait`] (Python's `multiprocessing.connection.wait`)
//! blocks until one of several connections, queues, receivers, processes
//! and events is ready, and [`connection::wait_async`] awaits the same.
//!
//! They depend on no runtime: tokio (either flavour), smol and
//! `futures::executor::block_on` all drive them. An async call takes the
//! same steps as the blocking one up to the point where it would sleep in
//! the kernel; there it hands the object's futex word (a process's pidfd
//! for `join_async`) to the waiting service, a thread per process started
//! on first use that sleeps in `futex_waitv` on every watched word and
//! wakes the tasks whose word changed. Nothing polls: a process whose
//! tasks await an idle queue uses no measurable CPU. Peers are still
//! watched: a peer that dies during an await ends it with
//! `Disconnected`, as it ends a blocking call. Because the service is a
//! thread, a process that used an async call is multithreaded from then
//! on, and [`StartMethod::Fork`] is refused in it (the other start
//! methods work).
//!
//! Cancellation: each attempt of an async send or receive runs whole
//! within one poll, so dropping a pending future never loses an item:
//! a pending `get_async` or `recv_async` has taken nothing, and a pending
//! `put_async` or `send_async` has sent nothing (an item is sent whole or
//! not at all). A dropped pending `lock_async` or `acquire_async` holds
//! nothing; a `Barrier::wait_async` dropped after its party arrived breaks
//! the barrier, as a timeout does. Lock guards are not `Send`: the holder
//! is the thread that completed the future, so hold a guard across an
//! `.await` only on a current-thread runtime (or drop it first).
//!
#![cfg_attr(all(feature = "serde", feature = "async"), doc = "```")]
#![cfg_attr(not(all(feature = "serde", feature = "async")), doc = "```ignore")]
//! fn produce(tx: shmproc::channel::Sender<u64>) {
//!     (0..100).for_each(|i| tx.send(i).expect("send"));
//! }
//!
//! let (tx, rx) = shmproc::channel::<u64>(16)?;
//! let mut child = shmproc::Process::spawn(produce, tx)?;
//! let sum = futures::executor::block_on(async {
//!     let mut sum = 0;
//!     while let Ok(x) = rx.recv_async().await { // ends when the child's sender is gone
//!         sum += x;
//!     }
//!     sum
//! });
//! assert_eq!(sum, 4950);
//! futures::executor::block_on(child.join_async())?;
//! # Ok::<(), shmproc::Error>(())
//! ```
//!
//! ## Choosing a primitive
//!
//! - Run work in another process: [`Process::spawn`]; with captures and
//!   the fork start method: [`Process::fork`].
//! - Run many tasks on a fixed set of worker processes: [`Pool`] (`map`
//!   over inputs, `imap` over a stream, `apply_async` with callbacks); with
//!   futures, `as_completed` and cancellation: [`ProcessPoolExecutor`].
//! - Choose how children start: [`StartMethod::ForkServer`] (default: safe
//!   with threads, fast), [`StartMethod::Spawn`] (re-exec, slowest, always
//!   safe), [`StartMethod::Fork`] (fastest; refused when the parent has
//!   several threads).
//! - Protect plain data shared by processes: [`Mutex<T>`](Mutex) (if a
//!   holder dies, the next `lock` gets [`LockError::OwnerDied`] with the
//!   data, never a hang). Protect something else: [`Lock`] or [`RLock`].
//! - Share a number or a small struct, read often and changed under a
//!   lock: [`Value<T>`](Value) (reads of values up to 64 bytes take no
//!   lock). An array of numbers changed in place under a lock, or copied
//!   in and out in bulk: [`Array<T>`](Array). Plain counters and flags
//!   without a lock: [`RawValue`], [`RawArray`] (atomic loads, stores and
//!   `fetch_add`).
//! - Count resources: [`Semaphore`], [`BoundedSemaphore`]. Wait for a
//!   condition on data under a mutex: [`Condvar`]. A one-shot flag:
//!   [`Event`]. A rendezvous of N processes: [`Barrier`] (a party that dies
//!   breaks it instead of stranding the others).
//! - Pass any serde value between any number of processes: [`Queue`]
//!   (blocking, bounded, never hangs on a dead peer: [`Error::Disconnected`]);
//!   with a count of unfinished tasks: [`JoinableQueue`]. With ends that
//!   know when the other side is done (every sender dropped, in any
//!   process), as crossbeam-channel's: [`channel()`](channel()) and
//!   [`channel::unbounded`].
//! - Stream plain values (`T: Pod`) from one process to another, fastest:
//!   [`SpscRing`] (lock-free; batches; zero-copy loans). Several producers
//!   or consumers: [`MpmcRing`] (lock-free; a process that dies
//!   mid-operation costs at most its own value).
//!   Variable-size byte messages: [`ByteRing`] (lock-free; loans).
//! - Talk both ways between two processes, any serde value, blocking with
//!   timeouts: [`Pipe`] (ends that any number of threads and processes may
//!   share; a dead or closed peer is reported, never waited on).
//! - Dicts and lists that many processes read and change, any serde
//!   types, with atomic read-modify-write: a [`Manager`] and its proxies
//!   ([`DictProxy`], [`ListProxy`]); a dead server is reported
//!   ([`Error::ManagerDead`]), never waited on. For plain data a
//!   [`Mutex<T>`](Mutex) in shared memory is far faster (no server).
//! - Bytes shared by name between unrelated processes: [`Segment`].
//! - A struct of atomics shared by name or with children: [`Shared<T>`](Shared).
//! - Several typed regions in one segment: [`Arena`] offsets plus
//!   [`Segment::typed`] and [`Segment::slice`].
//!
//! Every shared handle can be an argument of a child under every start
//! method: it travels as a descriptor beside the encoded bytes.
//!
//! Small anonymous objects (locks, semaphores, events, conditions,
//! barriers, `Mutex<T>`, `Value<T>`, small arrays) are not a segment each:
//! they are cells of shared arenas, a memfd of equal cells per cell size,
//! so a process can hold a hundred thousand of them with a few descriptors,
//! and a child given a thousand of them receives one descriptor per arena.
//! A `Lock` or a `Value<u64>` takes 64 bytes. Named objects have a segment
//! of their own.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `serde` | yes | encoding (serde + postcard): `Queue`, `JoinableQueue`, `Pipe`, `Process` and its start methods, and handles that serialize to be passed to children |
//! | `pool` | yes | `Pool` and `ProcessPoolExecutor` (needs `serde`) |
//! | `manager` | yes | `Manager`, `DictProxy`, `ListProxy`, `NamespaceProxy`, `ValueProxy`, `ArrayProxy`, `Served` and `ObjectProxy` (needs `serde`) |
//! | `inspect` | yes | `shmproc::inspect`, read-only reports on objects in `/dev/shm` (needs the three above) |
//! | `async` | yes | the async twins (`*_async`, `Stream`s, `IntoFuture` for the pool's futures) and `connection::wait`, on one waiting service thread per process; depends on `futures-core` only, on no runtime |
//!
//! With `default-features = false` the core remains, with no dependency on
//! serde: segments, [`Shared`], [`Arena`], the locks and the other
//! synchronisation primitives, [`Mutex`], the rings ([`SpscRing`],
//! [`MpmcRing`], [`ByteRing`]) and [`Value`], [`Array`], [`RawValue`],
//! [`RawArray`]. (The `failpoints` feature is test support for the crate's
//! own tests, not for users.)
//!
//! ## Layers
//!
//! Each layer uses only those before it:
//!
//! 1. `sys`: system calls only (futex, memfd, mmap, OFD locks, pidfd,
//!    signals).
//! 2. `owner`: who owns what: owner ids, liveness tokens (a process's
//!    death is confirmed by the kernel), the registry of processes taking
//!    part in an object, and the rate of liveness probes.
//! 3. `shm`: segments (create, open and validate, fd passing, stale
//!    cleanup), typed placement, the layout helper [`Arena`], and the
//!    shared arenas of small objects.
//!    Beside it, `watch` (feature `async`): the waiting service, which turns futex
//!    words and descriptors into `Waker` wake-ups for the async twins.
//! 4. `sync`: the robust mutex and the other futex state machines, the
//!    guards, and the public locks.
//! 5. `queue` (the lock-free rings), `shared` (`Value`, `Array`, `Raw*`).
//! 6. `channel` (feature `serde`): the one channel engine and `Queue`,
//!    `Pipe` on it, and `connection::wait`; `process`: start methods,
//!    bootstrap, naming functions across processes.
//! 7. `pool`, `manager`, `inspect`.
//!
//! Platform: Linux (futexes, `memfd_create`, `O_TMPFILE`, pidfds). README.md
//! says what macOS would need. SAFETY.md lists every unsafe invariant.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// Errors are built lazily (`ok_or_else(|| Error::..)`): an error built
// eagerly for `ok_or` is dropped on the success path through a call of
// `Error`'s drop glue, which cost a pool worker 7% of its time per task
// (2026-12-07 profile).
#![allow(clippy::unnecessary_lazy_evaluations)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "serde")]
pub mod channel;
#[cfg(feature = "serde")]
mod codec;
/// Waiting on several objects at once (Python's
/// `multiprocessing.connection`): [`wait`](connection::wait) and
/// [`wait_async`](connection::wait_async) over connections, queues,
/// typed receivers, processes and events.
#[cfg(all(feature = "serde", feature = "async"))]
pub mod connection {
    pub use crate::channel::pipe::{Connection, Pipe};
    pub use crate::channel::wait::{WaitTarget, Waitable, wait, wait_async};
}
mod error;
#[cfg(feature = "serde")]
pub mod fd;
#[cfg(feature = "inspect")]
pub mod inspect;
mod loom;
#[cfg(feature = "manager")]
mod manager;
mod owner;
#[cfg(feature = "pool")]
mod pool;
#[cfg(feature = "serde")]
mod process;
mod queue;
mod shared;
mod shm;
mod sync;
mod sys;
#[cfg(feature = "async")]
mod watch;

#[cfg(all(feature = "async", shmproc_loom))]
compile_error!("loom models build without the `async` feature (see .ci/loom.sh)");

#[cfg(feature = "serde")]
pub use channel::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, QueueJoinError, QueueJoinTimeoutError, RecvError,
    RecvIntoError, RecvTimeoutError, SendError, SendTimeoutError, TryGetError, TryPutError, TryRecvError, TrySendError,
};
#[cfg(feature = "serde")]
pub use channel::pipe::Iter as ConnectionIter;
#[cfg(feature = "serde")]
pub use channel::pipe::{Connection, Pipe, PipeBuilder};
#[cfg(feature = "serde")]
pub use channel::queue::Iter as QueueIter;
#[cfg(feature = "serde")]
pub use channel::queue::{DEFAULT_QUEUE_CAPACITY, JoinableQueue, Queue, QueueBuilder};
#[cfg(feature = "serde")]
pub use channel::typed::channel;
pub use error::{Error, ProcessFailure, Result};
#[cfg(feature = "serde")]
pub use fd::Fd;
#[cfg(feature = "manager")]
pub use manager::{
    Acquired, Args, ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy,
    LockProxyGuard, Manager, ManagerBuilder, NamespaceProxy, ObjectProxy, QueueProxy, RLockProxy, Reply,
    SemaphoreProxy, Served, ValueProxy,
};
#[cfg(feature = "pool")]
pub use pool::error::{Cancelled, ExceptionTimeoutError};
#[cfg(feature = "pool")]
pub use pool::error::{PoolJoinError, TaskError, TaskTimeoutError};
#[cfg(feature = "pool")]
pub use pool::executor::MapUntil;
#[cfg(feature = "pool")]
pub use pool::executor::{
    AsCompleted, AsCompletedUntil, DoneAndNotDone, ExecutorBuilder, ProcessPoolExecutor, ReturnWhen, TaskFuture,
    as_completed, as_completed_deadline, as_completed_timeout, wait, wait_deadline, wait_timeout,
};
#[cfg(all(feature = "pool", feature = "async"))]
pub use pool::executor::{AsCompletedStream, TaskFutureAwait};
#[cfg(feature = "pool")]
pub use pool::iter::Imap;
#[cfg(all(feature = "pool", feature = "async"))]
pub use pool::iter::ImapStream;
#[cfg(all(feature = "pool", feature = "async"))]
pub use pool::pool::AsyncResultAwait;
#[cfg(feature = "pool")]
pub use pool::pool::{AsyncResult, Pool, PoolBuilder};
#[cfg(feature = "serde")]
pub use process::bootstrap::init;
#[cfg(feature = "serde")]
pub use process::current::{ProcessInfo, active_children, cpu_count, current_process, parent_process};
#[cfg(feature = "serde")]
pub use process::error::{CloseError, JoinError, JoinTimeoutError};
#[cfg(feature = "serde")]
pub use process::handle::{Process, ProcessBuilder, ProcessExit, Task};
#[cfg(feature = "serde")]
pub use process::start::{Context, StartMethod, set_start_method, start_method};
#[cfg(feature = "serde")]
#[doc(hidden)]
pub use process::task::__capture;
#[cfg(feature = "serde")]
pub use process::task::{Capture, Captured, TaskFn};
pub use queue::byte_ring::TryIter as ByteTryIter;
pub use queue::byte_ring::{ByteConsumer, ByteProducer, ByteRing, ReadLoan, WriteLoan};
pub use queue::error::{BytePopError, BytePushError, MpmcPopError, MpmcPushError, PopError, PushError};
pub use queue::mpmc::TryIter as MpmcTryIter;
pub use queue::mpmc::{MpmcConsumer, MpmcProducer, MpmcReadLoan, MpmcRing, MpmcWriteLoan};
pub use queue::spsc::TryIter as SpscTryIter;
pub use queue::spsc::{Consumer, Producer, SpscRing};
pub use shared::array::{Array, ArrayGuard};
pub use shared::raw::{RawArray, RawInt, RawValue};
pub use shared::value::{Value, ValueGuard};
pub use shm::arena::Arena;
pub use shm::layout::{CachePadded, RelPtr, ShmSafe, layout_hash, layout_hash_mix};
pub use shm::segment::{Access, CleanupReport, Segment, SegmentBuilder, cleanup_stale, cleanup_stale_in};
pub use shm::typed::Shared;
pub use sync::error::{
    AcquireError, AcquireTimeoutError, BarrierError, BarrierTimeoutError, TimedOut, TryAcquireError, WouldBlock,
};
pub use sync::event::{Barrier, BarrierBuilder, Condvar, Event, WaitResult, WaitTimeoutResult};
pub use sync::guard::{CondvarGuard, LockError, LockTimeoutError, TryLockError, WaitTimeoutError};
pub use sync::lock::{Lock, LockGuard, RLock};
pub use sync::mutex::Mutex;
pub use sync::mutex::MutexGuard;
pub use sync::semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
