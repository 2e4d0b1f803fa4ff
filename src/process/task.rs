//! What every function-taking call accepts: [`TaskFn`], and the
//! [`task!`](crate::task!) macro that gives a closure its captures.
//!
//! A task is named across processes in one of three ways, chosen by its
//! type when the call is made:
//!
//! - a fn pointer (`fn(A) -> R`): by its offset in the executable, as
//!   before (`FnRef`);
//! - a zero-sized function (a fn item such as `square`, or a closure that
//!   captures nothing): by its type alone. The call's monomorphized
//!   trampoline knows the type, and the worker makes the zero-sized value
//!   again (`recreate_zst` in `shm/fnref.rs`: the one unsafe step);
//! - a [`Captured`] (what `task!` makes): its body, a plain
//!   `fn(&C, A) -> R`, by offset, and its captures `C` encoded once per
//!   call (once per chunk record of a map), decoded once in the worker.

use std::any::{Any, TypeId};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::shm::fnref::{self, FnRef, FnWords, RefFn};

/// A value a [`task!`](crate::task!) may capture: it travels encoded to
/// the process that runs the task. Implemented for every `Serialize +
/// DeserializeOwned + Send + 'static` type.
///
/// # Examples
///
/// ```
/// fn travels<T: shmproc::Capture>(_: &T) {}
/// travels(&String::from("a name"));
/// travels(&vec![1u8, 2, 3]);
/// ```
///
/// Python: what `pickle` accepts for the arguments bound by
/// `functools.partial`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be captured by `shmproc::task!`: a capture travels encoded to another process",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "captures must be `Serialize + DeserializeOwned + Send + 'static`; capture an owned, serializable value \
            (or a shmproc handle) instead"
)]
pub trait Capture: Serialize + DeserializeOwned + Send + 'static {}

// Not recommended: an error names the capture and this trait's message,
// not the missing `Serialize` deep inside.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Capture for T {}

mod sealed {
    pub trait Sealed<A, R> {}

    /// Makes [`TaskFn`](super::TaskFn)'s hidden methods uncallable from
    /// outside the crate: no one else can make one (so no one else can ask
    /// `__load` to make a zero-sized value again).
    #[derive(Debug, Clone, Copy)]
    pub struct Token(());

    /// The only token.
    pub(crate) const TOKEN: Token = Token(());
}

pub(crate) use sealed::TOKEN;

/// A function that a process, a pool or the manager can run in another
/// process: the parameter type of every function-taking call
/// ([`Process::spawn`](crate::Process::spawn), `Pool::map`,
/// `ProcessPoolExecutor::submit`, ...). Sealed; implemented for
///
/// - fn items and fn pointers of type `fn(A) -> R` (`pool.map(square,
///   ..)`, `let f: fn(u64) -> u64 = square; pool.map(f, ..)`),
/// - closures that capture nothing (`pool.map(|x: u64| x * 2, ..)`),
/// - [`Captured`], what [`task!`](crate::task!) makes from a closure and
///   the list of what it captures.
///
/// # Naming across processes
///
/// A worker started by spawn or the fork server runs the same executable
/// but never received the parent's values, so a task is *named*: a fn
/// pointer by its offset from a known function of the executable; a fn
/// item or a capture-free closure by its type (the call's trampoline is
/// instantiated for it, and the worker makes its zero-sized value again);
/// a `task!` by the offset of its body, a plain `fn(&C, A) -> R`, plus its
/// captures `C`, encoded once per call (once per chunk for the maps) and
/// decoded once in the worker, where the body gets them by reference.
///
/// # Compile errors
///
/// A closure that captures variables is not a `TaskFn`: it fails to
/// compile (its captures would not reach the worker). Name them with
/// [`task!`](crate::task!), which encodes them.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let mut a = shmproc::Process::spawn(square, 3)?;
/// let mut b = shmproc::Process::spawn(|x: u64| x + 1, 3)?;
/// let k = 10u64;
/// let mut c = shmproc::Process::spawn(shmproc::task!((k) |x: u64| x * *k), 3)?;
/// assert_eq!((a.join()?, b.join()?, c.join()?), (9, 4, 30));
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: any picklable callable (a module-level function, a
/// `functools.partial`); a lambda becomes a `task!`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task shmproc can run in another process",
    label = "not a fn item or pointer `fn({A}) -> {R}`, a closure that captures nothing, or a `shmproc::task!`",
    note = "a closure that captures variables cannot travel as it is: name the captures with \
            shmproc::task!((a, b) |x: {A}| ...)",
    note = "a task is also `Copy + Send + Sync + 'static`, its argument `{A}` and result `{R}` `'static`"
)]
pub trait TaskFn<A, R>: sealed::Sealed<A, R> + Sized + Send + 'static {
    /// The function's name across processes (the words of a `FnRef`) and
    /// its encoded captures (empty without any).
    #[doc(hidden)]
    fn __name(&self, token: sealed::Token) -> Result<(FnWords, Vec<u8>)>;

    /// The task again, in the process that runs it, from what
    /// [`__name`](TaskFn::__name) gave in the parent.
    #[doc(hidden)]
    fn __load(token: sealed::Token, function: FnWords, captures: &[u8]) -> Result<Self>;

    /// Runs the task.
    #[doc(hidden)]
    fn __call(&self, arg: A) -> R;
}

fn stat(e: std::io::Error) -> Error {
    Error::os("stat /proc/self/exe", e)
}

fn resolve_err(e: std::io::Error) -> Error {
    Error::os("resolve task function", e)
}

/// Calls the zero-sized `F`: what names a fn item or a capture-free
/// closure (its offset is checked in the worker like any other).
fn call_zst<F, A, R>(arg: A) -> R
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
{
    fnref::recreate_zst::<F>().expect("invariant: only a zero-sized task is named by call_zst")(arg)
}

impl<F, A, R> sealed::Sealed<A, R> for F where F: Fn(A) -> R + Copy + Send + Sync + 'static {}

// Not recommended: an error names `TaskFn` and its message ("name the
// captures with shmproc::task!"), not the `Copy` a captured `String` lacks.
#[diagnostic::do_not_recommend]
impl<F, A, R> TaskFn<A, R> for F
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: 'static,
    R: 'static,
{
    fn __name(&self, _: sealed::Token) -> Result<(FnWords, Vec<u8>)> {
        const {
            assert!(
                std::mem::size_of::<F>() == 0 || std::mem::size_of::<F>() == std::mem::size_of::<fn(A) -> R>(),
                "a closure that captures variables cannot travel to another process: name the captures with \
                 shmproc::task!((a, b) |x| ...)"
            )
        };
        if let Some(p) = (self as &dyn Any).downcast_ref::<fn(A) -> R>() {
            return Ok((FnRef::of(*p).map_err(stat)?.to_words(), Vec::new()));
        }
        if std::mem::size_of::<F>() != 0 {
            // A closure that captures one pointer-sized value passes the
            // compile-time check above (it cannot tell such a closure
            // from a fn pointer).
            return Err(Error::InvalidArgument {
                what: "a closure that captures variables cannot travel to another process: name the captures \
                       with shmproc::task!((a, b) |x| ...)",
            });
        }
        let named: fn(A) -> R = call_zst::<F, A, R>;
        Ok((FnRef::of(named).map_err(stat)?.to_words(), Vec::new()))
    }

    fn __load(_: sealed::Token, function: FnWords, _captures: &[u8]) -> Result<Self> {
        let p: fn(A) -> R = FnRef::from_words(function).resolve().map_err(resolve_err)?;
        if TypeId::of::<F>() == TypeId::of::<fn(A) -> R>() {
            let boxed: Box<dyn Any> = Box::new(p);
            return boxed.downcast::<F>().map(|f| *f).map_err(|_| Error::InvalidArgument { what: "task type" });
        }
        // The name resolved (same executable, same type): `p` is
        // `call_zst::<F, A, R>`, and F is made again.
        fnref::recreate_zst::<F>()
            .ok_or_else(|| Error::InvalidArgument { what: "a capturing closure cannot be made again in a worker" })
    }

    #[inline]
    fn __call(&self, arg: A) -> R {
        self(arg)
    }
}

/// A closure with named captures, made by [`task!`](crate::task!): the
/// captures `C` (encoded when the task is sent) and its body, a plain
/// `fn(&C, A) -> R` (named by its offset in the executable).
///
/// # Examples
///
/// ```
/// let (base, label) = (100u64, String::from("items"));
/// let t = shmproc::task!((base, label) |x: u64| format!("{} {label}", x + *base));
/// let mut p = shmproc::Process::spawn(t, 5)?;
/// assert_eq!(p.join()?, "105 items");
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `functools.partial(f, base, label)`.
pub struct Captured<C, A, R> {
    captures: C,
    body: fn(&C, A) -> R,
}

impl<C: Clone, A, R> Clone for Captured<C, A, R> {
    fn clone(&self) -> Self {
        Captured { captures: self.captures.clone(), body: self.body }
    }
}

impl<C: std::fmt::Debug, A, R> std::fmt::Debug for Captured<C, A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured").field("captures", &self.captures).finish_non_exhaustive()
    }
}

impl<C, A, R> Captured<C, A, R> {
    /// What [`task!`](crate::task!) expands to; use the macro.
    #[doc(hidden)]
    pub fn __new(captures: C, body: fn(&C, A) -> R) -> Self {
        Captured { captures, body }
    }

    /// The captures.
    ///
    /// # Examples
    ///
    /// ```
    /// let n = 3u32;
    /// let t = shmproc::task!((n) |x: u32| x + *n);
    /// assert_eq!(t.captures(), &(3,));
    /// ```
    pub fn captures(&self) -> &C {
        &self.captures
    }
}

impl<C, A, R> sealed::Sealed<A, R> for Captured<C, A, R> {}

impl<C, A, R> TaskFn<A, R> for Captured<C, A, R>
where
    C: Capture,
    A: 'static,
    R: 'static,
{
    fn __name(&self, _: sealed::Token) -> Result<(FnWords, Vec<u8>)> {
        let words = FnRef::of(RefFn(self.body)).map_err(stat)?.to_words();
        Ok((words, codec::encode(&self.captures)?))
    }

    fn __load(_: sealed::Token, function: FnWords, captures: &[u8]) -> Result<Self> {
        let RefFn(body) = FnRef::from_words(function).resolve::<RefFn<C, A, R>>().map_err(resolve_err)?;
        let captures = codec::decode::<C>(captures)
            .map_err(|e| Error::Codec { message: format!("the task's captures did not decode: {e}") })?;
        Ok(Captured { captures, body })
    }

    #[inline]
    fn __call(&self, arg: A) -> R {
        (self.body)(&self.captures, arg)
    }
}

/// Checks that a capture of [`task!`](crate::task!) can travel (a clear
/// error names the capture that cannot).
#[doc(hidden)]
pub fn __capture<T: Capture>(_: &T) {}

/// A task with named captures: `task!((a, b) |x: T| body)`, or
/// `task!((a, b) || body)` for a call whose argument is `()`.
///
/// The captures are moved in (clone them before if you keep using them),
/// encoded when the task is sent (once per call; once per chunk for the
/// maps) and decoded once in the process that runs it, where the body
/// sees each by reference (`a: &A`). The body is a plain function: it may
/// use only its argument, the captures and items with static names.
/// Give the closure's argument a type (`|x: u64|`), as the task's argument
/// type is not known where the body is checked.
///
/// # Examples
///
/// ```
/// let (k, name) = (3u64, String::from("abc"));
/// let t = shmproc::task!((k, name) |x: u64| x * *k + name.len() as u64);
/// let mut p = shmproc::Process::spawn(t, 2)?;
/// assert_eq!(p.join()?, 9);
/// let greeting = String::from("hello");
/// let mut q = shmproc::Process::spawn(shmproc::task!((greeting) || greeting.to_uppercase()), ())?;
/// assert_eq!(q.join()?, "HELLO");
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Compile errors
///
/// A variable the body uses but the list does not name: rustc says
/// "closures can only be coerced to `fn` types if they do not capture any
/// variables" and points at it.
///
/// ```compile_fail,E0308
/// let (k, forgotten) = (3u64, 4u64);
/// let t = shmproc::task!((k) |x: u64| x * *k + forgotten);
/// # let _ = shmproc::Process::spawn(t, 1);
/// ```
///
/// A capture that cannot travel (one that is not `Serialize +
/// DeserializeOwned + Send + 'static`; here an `Instant`, which means
/// nothing in another process): "`Instant` cannot be captured by
/// `shmproc::task!`".
/// (A `std::sync::Mutex<T>` *can*: serde encodes its value, and the
/// worker gets a mutex of its own.)
///
/// ```compile_fail,E0277
/// let start = std::time::Instant::now();
/// let t = shmproc::task!((start) |x: u64| x + start.elapsed().as_secs());
/// # let _ = shmproc::Process::spawn(t, 1);
/// ```
///
/// A closure that captures variables, given without the macro: "is not a
/// task shmproc can run in another process ... name the captures with
/// shmproc::task!".
///
/// ```compile_fail,E0277
/// let name = String::from("abc");
/// let _ = shmproc::Process::spawn(move |x: u64| x + name.len() as u64, 1);
/// ```
///
/// Python: `functools.partial(f, a, b)` or a lambda over `a` and `b`
/// (which Python's pickle refuses; procspawn's `spawn!` is the Rust
/// ancestor of this macro).
#[macro_export]
macro_rules! task {
    (( $($cap:ident),* $(,)? ) || $body:expr) => {{
        $( $crate::__capture(&$cap); )*
        $crate::Captured::__new(($($cap,)*), |__captures, (): ()| {
            #[allow(unused_variables)]
            let ($($cap,)*) = __captures;
            $body
        })
    }};
    (( $($cap:ident),* $(,)? ) $body:expr) => {{
        $( $crate::__capture(&$cap); )*
        $crate::Captured::__new(($($cap,)*), |__captures, __arg| {
            #[allow(unused_variables)]
            let ($($cap,)*) = __captures;
            ($body)(__arg)
        })
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(x: u32) -> u32 {
        x * 3
    }

    fn round_trip<T: TaskFn<A, R>, A, R>(t: &T) -> T {
        let (words, caps) = t.__name(TOKEN).expect("name");
        T::__load(TOKEN, words, &caps).expect("load")
    }

    #[test]
    fn every_kind_of_task_round_trips_through_its_name() {
        assert_eq!(round_trip(&triple).__call(2), 6);
        let p: fn(u32) -> u32 = triple;
        assert_eq!(round_trip(&p).__call(3), 9);
        assert_eq!(round_trip(&|x: u32| x + 1).__call(3), 4);
        let (k, v) = (5u32, vec![1u32, 2]);
        let t = crate::task!((k, v) |x: u32| x * *k + v.iter().sum::<u32>());
        assert_eq!(round_trip(&t).__call(2), 13);
    }

    #[test]
    fn bad_names_and_captures_are_errors() {
        let k = String::from("k");
        let t = crate::task!((k) |x: u32| x as usize + k.len());
        let (words, caps) = t.__name(TOKEN).expect("name");
        assert!(matches!(<Captured<(String,), u32, usize>>::__load(TOKEN, words, &[0xff]), Err(Error::Codec { .. })));
        assert!(<Captured<(u64,), u32, usize>>::__load(TOKEN, words, &caps).is_err(), "another body type");
        let (fw, _) = triple.__name(TOKEN).expect("name");
        assert!(<fn(u64) -> u64 as TaskFn<u64, u64>>::__load(TOKEN, fw, &[]).is_err());
        let mut w = fw;
        w[2] ^= 1; // another executable
        assert!(<fn(u32) -> u32 as TaskFn<u32, u32>>::__load(TOKEN, w, &[]).is_err());
    }

    #[test]
    fn a_closure_capturing_one_word_is_refused_at_run_time() {
        let k = 7u64;
        let c = move |x: u64| x + k;
        assert!(matches!(c.__name(TOKEN), Err(Error::InvalidArgument { .. })));
    }
}
