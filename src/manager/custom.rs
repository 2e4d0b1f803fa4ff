//! Served user objects: a value of the caller's type that the manager's
//! server creates and holds, and whose named methods proxies call
//! (Python's `BaseManager.register`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::manager::protocol::{self, op};
use crate::manager::{Manager, ObjRef};
use crate::shm::fnref::FnRef;

/// The monomorphized constructor the server calls: decodes a `T` and boxes
/// it.
pub(crate) type Construct = fn(Vec<u8>) -> std::result::Result<Box<dyn Served>, String>;

fn construct<T: Served + DeserializeOwned>(init: Vec<u8>) -> std::result::Result<Box<dyn Served>, String> {
    let v: T = codec::decode(&init).map_err(|e| e.to_string())?;
    Ok(Box::new(v))
}

std::thread_local! {
    /// The (manager nonce, object id) whose user code (a served object's
    /// method, a value's update function) runs on this thread, if any: in
    /// the server process, on the thread that serves the call.
    static RUNNING: std::cell::Cell<Option<(u64, u64)>> = const { std::cell::Cell::new(None) };
}

/// Marks this thread as running user code of object `id` of manager
/// `nonce` until the guard drops.
pub(crate) fn running(nonce: u64, id: u64) -> impl Drop {
    struct Running(Option<(u64, u64)>);
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(self.0));
        }
    }
    Running(RUNNING.with(|r| r.replace(Some((nonce, id)))))
}

/// Refuses a request for object `id` of manager `nonce` from inside that
/// object's own user code (it would wait for itself forever).
pub(crate) fn refuse_own_call(nonce: u64, id: u64) -> Result<()> {
    if RUNNING.with(|r| r.get()) == Some((nonce, id)) {
        return Err(Error::InvalidArgument {
            what: "a served object's method (or a value's or dict's update function) used its own object; \
                   it would wait for itself",
        });
    }
    Ok(())
}

/// A type whose values a [`Manager`] can hold and serve: the server calls
/// [`call`](Served::call) with a method's name and its encoded arguments,
/// for every method [`methods`](Served::methods) lists.
///
/// The server runs the same executable file as the program (it is a child
/// of it), so the value lives there as a value of `T`; a proxy
/// ([`ObjectProxy`]) in any process sends calls to it. Calls of one object
/// are applied one at a time under that object's own lock (not the
/// manager's), so a method needs no locking of its own, and other objects
/// of the manager stay usable while it runs. A method may use proxies of
/// the same manager (a `ListProxy` field it pushes to, another served
/// object); calling its own object from inside a method, on the thread that
/// runs it, is refused with [`Error::InvalidArgument`] rather than waiting
/// for itself. Not detected (and so to avoid): a method that waits for
/// another thread or process calling this object, or two objects whose
/// methods call each other at the same time.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use shmproc::{Args, Manager, Reply, Served};
///
/// #[derive(Serialize, Deserialize)]
/// struct Counter {
///     n: u64,
/// }
///
/// impl Served for Counter {
///     fn methods(&self) -> &'static [&'static str] {
///         &["add", "get"]
///     }
///
///     fn call(&mut self, method: &str, args: Args<'_>) -> shmproc::Result<Reply> {
///         if method == "add" {
///             self.n += args.decode::<u64>()?;
///         }
///         Reply::new(&self.n)
///     }
/// }
///
/// let mgr = Manager::start()?;
/// let c = mgr.serve(Counter { n: 0 })?;
/// assert_eq!(c.call::<u64, u64>("add", &5)?, 5);
/// assert_eq!(c.call::<(), u64>("get", &())?, 5);
/// assert!(matches!(c.call::<(), u64>("reset", &()), Err(shmproc::Error::InvalidArgument { .. })));
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: a class given to `BaseManager.register(typeid, callable,
/// exposed=...)`; `methods` is `exposed`. Differences: the value is made in
/// the client and moved to the server (encoded), rather than constructed
/// there from arguments; arguments and results are typed per call.
pub trait Served: Send + 'static {
    /// The methods proxies may call (Python's `exposed`); any other name is
    /// refused with [`Error::InvalidArgument`] before `call` runs.
    fn methods(&self) -> &'static [&'static str];

    /// Runs `method` (one of [`methods`](Served::methods)) with `args`, in
    /// the server. An error or a panic fails this call only: the caller
    /// gets [`Error::Remote`] and the object stays in the manager, usable,
    /// with whatever the method changed before it failed (as a Python
    /// method that raises halfway).
    ///
    /// # Errors
    /// Whatever the method decides; [`Args::decode`] and [`Reply::new`]
    /// give [`Error::Codec`].
    fn call(&mut self, method: &str, args: Args<'_>) -> Result<Reply>;
}

/// The encoded arguments of a call to a [`Served`] object.
///
/// # Examples
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use shmproc::{Args, Manager, Reply, Served};
/// # #[derive(Serialize, Deserialize)]
/// # struct Counter { n: u64 }
/// # impl Served for Counter {
/// #     fn methods(&self) -> &'static [&'static str] { &["add"] }
/// #     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
/// #         self.n += args.decode::<u64>()?;
/// #         Reply::new(&self.n)
/// #     }
/// # }
/// let mgr = Manager::start()?;
/// let c = mgr.serve(Counter { n: 0 })?;
/// // `Counter::call` decodes these 2 with `args.decode::<u64>()`.
/// assert_eq!(c.call::<u64, u64>("add", &2)?, 2);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// See [`Served`] for the whole picture.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    bytes: &'a [u8],
}

impl<'a> Args<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Args<'a> {
        Args { bytes }
    }

    /// Decodes the arguments as an `A` (use a tuple for several).
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # use shmproc::{Args, Manager, Reply, Served};
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Counter { n: u64 }
    /// # impl Served for Counter {
    /// #     fn methods(&self) -> &'static [&'static str] { &["add"] }
    /// #     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
    /// #         self.n += args.decode::<u64>()?;
    /// #         Reply::new(&self.n)
    /// #     }
    /// # }
    /// let mgr = Manager::start()?;
    /// let c = mgr.serve(Counter { n: 0 })?;
    /// assert_eq!(c.call::<u64, u64>("add", &3)?, 3);
    /// // Nothing where the method decodes a number: the call fails.
    /// assert!(c.call::<(), u64>("add", &()).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] if the bytes do not decode as an `A`. The encoding
    /// does not name types, so a value of another type with a compatible
    /// shape (a string's length read as a number) may decode to a wrong
    /// value instead: callers and methods agree on the types.
    pub fn decode<A: DeserializeOwned>(&self) -> Result<A> {
        codec::decode(self.bytes)
    }
}

/// The encoded result of a call to a [`Served`] object.
///
/// # Examples
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use shmproc::{Args, Manager, Reply, Served};
/// # #[derive(Serialize, Deserialize)]
/// # struct Counter { n: u64 }
/// # impl Served for Counter {
/// #     fn methods(&self) -> &'static [&'static str] { &["add"] }
/// #     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
/// #         self.n += args.decode::<u64>()?;
/// #         Reply::new(&self.n)
/// #     }
/// # }
/// let mgr = Manager::start()?;
/// let c = mgr.serve(Counter { n: 1 })?;
/// // `Counter::call` answers with `Reply::new(&self.n)`.
/// assert_eq!(c.call::<u64, u64>("add", &1)?, 2);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reply(Vec<u8>);

impl Reply {
    /// Encodes `value` as the call's result.
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # use shmproc::{Args, Manager, Reply, Served};
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Counter { n: u64 }
    /// # impl Served for Counter {
    /// #     fn methods(&self) -> &'static [&'static str] { &["add"] }
    /// #     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
    /// #         self.n += args.decode::<u64>()?;
    /// #         Reply::new(&self.n)
    /// #     }
    /// # }
    /// let mgr = Manager::start()?;
    /// let c = mgr.serve(Counter { n: 5 })?;
    /// assert_eq!(c.call::<u64, u64>("add", &0)?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] if `value` cannot be encoded.
    pub fn new<R: Serialize + ?Sized>(value: &R) -> Result<Reply> {
        codec::encode(value).map(Reply)
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

proxy_common! {
    /// A proxy for a [`Served`] value held by a [`Manager`]'s server: every
    /// [`call`](ObjectProxy::call) runs one of its methods there, so every
    /// process holding a clone uses the same object.
    ///
    /// A cheap `Clone`, `Send + Sync`; serializes as a reference to the object
    /// (pass it to child processes, keep it in a manager's dict, list or
    /// namespace); a named one ([`Manager::serve_named`]) is reachable from
    /// any process through [`Manager::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # use shmproc::{Args, Manager, Reply, Served};
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Counter { n: u64 }
    /// # impl Served for Counter {
    /// #     fn methods(&self) -> &'static [&'static str] { &["add"] }
    /// #     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
    /// #         self.n += args.decode::<u64>()?;
    /// #         Reply::new(&self.n)
    /// #     }
    /// # }
    /// let mgr = Manager::start()?;
    /// let c = mgr.serve(Counter { n: 0 })?;
    /// let d = c.clone(); // the same object
    /// c.call::<u64, u64>("add", &1)?;
    /// assert_eq!(d.call::<u64, u64>("add", &1)?, 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: the proxy `manager.Counter()` returns for a registered type.
    pub struct ObjectProxy<T>,
    "shmproc::ObjectProxy"
}

impl<T: Served> ObjectProxy<T> {
    /// Calls `method` with `args` on the server's object; its result.
    ///
    /// # Examples
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # use shmproc::{Args, Manager, Reply, Served};
    /// # #[derive(Serialize, Deserialize)]
    /// # struct Counter { n: u64 }
    /// # impl Served for Counter {
    /// #     fn methods(&self) -> &'static [&'static str] { &["add"] }
    /// #     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
    /// #         self.n += args.decode::<u64>()?;
    /// #         Reply::new(&self.n)
    /// #     }
    /// # }
    /// let mgr = Manager::start()?;
    /// let c = mgr.serve(Counter { n: 0 })?;
    /// assert_eq!(c.call::<u64, u64>("add", &4)?, 4);
    /// assert!(c.call::<u64, u64>("no such method", &4).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the object has no such method (not in
    /// [`Served::methods`]); [`Error::Remote`] if the method failed or
    /// panicked (the object stays usable); [`Error::Codec`] if the
    /// arguments or the result do not decode as the types given;
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `proxy.method(*args)`.
    pub fn call<A: Serialize + ?Sized, R: DeserializeOwned>(&self, method: &str, args: &A) -> Result<R> {
        refuse_own_call(self.obj.info.nonce, self.obj.id)?;
        let mut req = self.obj.request(op::CALL);
        protocol::put_bytes(&mut req, method.as_bytes())?;
        codec::encode_append(args, &mut req)?;
        codec::decode(&self.obj.call(&req)?)
    }
}

impl Manager {
    /// Sends a request that makes an object: `[op][0][fingerprint][name
    /// bytes]` then what `rest` appends.
    pub(super) fn create(
        &self,
        op: u8,
        fingerprint: u64,
        name: &str,
        rest: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<ObjRef> {
        let mut req = protocol::request(op, 0);
        req.extend_from_slice(&fingerprint.to_le_bytes());
        protocol::put_bytes(&mut req, name.as_bytes())?;
        rest(&mut req)?;
        let reply = super::client::Client::of(&self.info)?.call(&req)?;
        let p = protocol::payload(&reply)?;
        let id = p.try_into().map(u64::from_le_bytes).map_err(|_| Error::Corrupt { what: "manager reply (id)" })?;
        Ok(ObjRef { info: self.info.clone(), id, fingerprint })
    }

    unnamed! {
        /// Moves `value` into the server, which holds it from then on; the
        /// proxy calls its methods (see [`Served`]).
        ///
        /// # Examples
        ///
        /// ```
        /// use serde::{Deserialize, Serialize};
        /// use shmproc::{Args, Reply, Served};
        ///
        /// #[derive(Serialize, Deserialize)]
        /// struct Log(Vec<String>);
        ///
        /// impl Served for Log {
        ///     fn methods(&self) -> &'static [&'static str] {
        ///         &["push", "len"]
        ///     }
        ///     fn call(&mut self, method: &str, args: Args<'_>) -> shmproc::Result<Reply> {
        ///         if method == "push" {
        ///             self.0.push(args.decode()?);
        ///         }
        ///         Reply::new(&self.0.len())
        ///     }
        /// }
        ///
        /// let mgr = shmproc::Manager::start()?;
        /// let log = mgr.serve(Log(Vec::new()))?;
        /// assert_eq!(log.call::<str, usize>("push", "hello")?, 1);
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::Remote`] if the server cannot find the type's constructor
        /// (a server started from another executable file) or it panicked;
        /// [`Error::Codec`] if `value` does not encode; [`Error::ManagerDead`]
        /// if the server is gone.
        ///
        /// Python: `manager.Counter()` after `register('Counter', Counter)`.
        #[doc(alias = "register")]
        serve_named => pub fn serve<T>(value: T) -> Result<ObjectProxy<T>>
        where
            T: Served + Serialize + DeserializeOwned,
    }

    /// The served object called `name`, made from `value` if there is none
    /// yet (then `value` is dropped); the empty name makes a new anonymous
    /// one.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use shmproc::{Args, Reply, Served};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Total(i64);
    ///
    /// impl Served for Total {
    ///     fn methods(&self) -> &'static [&'static str] {
    ///         &["add"]
    ///     }
    ///     fn call(&mut self, _: &str, args: Args<'_>) -> shmproc::Result<Reply> {
    ///         self.0 += args.decode::<i64>()?;
    ///         Reply::new(&self.0)
    ///     }
    /// }
    ///
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.serve_named("total", Total(10))?.call::<i64, i64>("add", &1)?;
    /// let again = mgr.serve_named("total", Total(0))?; // the existing one
    /// assert_eq!(again.call::<i64, i64>("add", &1)?, 12);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] if an object of that name exists with another
    /// kind or type; as for [`serve`](Manager::serve).
    ///
    /// Python: a registered type shared under a name.
    pub fn serve_named<T>(&self, name: &str, value: T) -> Result<ObjectProxy<T>>
    where
        T: Served + Serialize + DeserializeOwned,
    {
        let ctor: Construct = construct::<T>;
        let ctor = FnRef::of(ctor).map_err(|e| Error::os("stat /proc/self/exe", e))?;
        let obj = self.create(op::NEW_OBJECT, ObjectProxy::<T>::fingerprint(), name, |req| {
            protocol::put_bytes(req, &codec::encode(&ctor)?)?;
            codec::encode_append(&value, req)
        })?;
        Ok(ObjectProxy::wrap(obj))
    }
}
