//! `Manager`: a server process that owns dicts and lists; proxies in any
//! process use them (Python's `multiprocessing.Manager()`).
//!
//! Transport: no sockets. Each client process has one duplex shared-memory
//! [`Pipe`](crate::Pipe) to the server (its requests and replies), made on
//! first use and announced through the manager's accept [`Queue`]. The
//! segments are created with mode 0600, so only processes of the same user
//! can open them; a hello must carry the manager's magic before the server
//! looks at anything else in it.
//!
//! Layers: `protocol.rs` (the wire format), `server.rs` (the server
//! process; `server/values.rs` for namespaces, values, arrays and served
//! objects), `client.rs` (one connection per process), `refs.rs` (how a
//! proxy encodes, also inside the manager's own values), `schema.rs`
//! (type fingerprints from the serde shape), and the proxies: `dict.rs`,
//! `list.rs`, `namespace.rs`, `value.rs` (values and arrays), `custom.rs`
//! (served user objects); `served.rs` (the server side of the blocking objects), `sync.rs` and
//! `queue.rs` (their proxies).
//!
//! Blocking calls (a `get` on an empty queue, an `acquire` of a held lock)
//! do not travel on the shared connection, where they would hold up every
//! other thread of the process: each checks out a connection of its own
//! for its duration (a small per-process set, made on demand, kept for
//! reuse, closed beyond 4 idle ones), and the server waits on the object's
//! own mutex and condvar, never under the state lock. `served.rs` has the
//! details (deadlines, dead clients, dead lock holders).
//!
//! No unsafe code: it is all built on [`Pipe`](crate::Pipe), [`Queue`] and [`Process`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::channel::error::RecvTimeoutError;
use crate::channel::pipe::Pipe;
use crate::channel::queue::Queue;
use crate::error::{Error, Result};
use crate::owner::token::{self, Liveness};
use crate::process::handle::Process;
use crate::process::start::StartMethod;

/// Defines a proxy kind: the struct (a reference to its object in the
/// server, typed by its element types, if any), its constructor `wrap`, its
/// type fingerprint (the serde shape of the element types, see `schema`,
/// with the kind's name), `Clone`, `Debug`, and the serde form (a reference
/// checked against that fingerprint when decoded).
macro_rules! proxy_common {
    ($(#[$attr:meta])* pub struct $name:ident<$($t:ident),+>, $kind:literal) => {
        $(#[$attr])*
        pub struct $name<$($t),+> {
            pub(super) obj: $crate::manager::ObjRef,
            _t: std::marker::PhantomData<fn() -> ($($t,)+)>,
        }
        proxy_common!(@impls $name [$($t),+] $kind);
    };
    ($(#[$attr:meta])* pub struct $name:ident, $kind:literal) => {
        $(#[$attr])*
        pub struct $name {
            pub(super) obj: $crate::manager::ObjRef,
            _t: std::marker::PhantomData<fn() -> ()>,
        }
        proxy_common!(@impls $name [] $kind);
    };
    (@impls $name:ident [$($t:ident),*] $kind:literal) => {
        impl<$($t),*> $name<$($t),*> {
            /// A proxy of `obj`.
            pub(super) fn wrap(obj: $crate::manager::ObjRef) -> Self {
                $name { obj, _t: std::marker::PhantomData }
            }
        }

        impl<$($t: serde::de::DeserializeOwned),*> $name<$($t),*> {
            /// The type fingerprint of this kind with these element types.
            pub(super) fn fingerprint() -> u64 {
                $crate::manager::schema::fingerprint::<($($t,)*)>($kind)
            }
        }

        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                Self::wrap(self.obj.clone())
            }
        }

        impl<$($t),*> std::fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("id", &self.obj.id)
                    .field("manager_pid", &self.obj.info.server.pid)
                    .finish()
            }
        }

        impl<$($t),*> serde::Serialize for $name<$($t),*> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.obj.serialize_as(s)
            }
        }

        impl<'de, $($t: serde::de::DeserializeOwned),*> serde::Deserialize<'de> for $name<$($t),*> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                $crate::manager::ObjRef::deserialize_as(d, Self::fingerprint()).map(Self::wrap)
            }
        }
    };
}

/// A `Manager` method that makes a new anonymous object: the `x_named`
/// method with the empty name. Takes the method's docs (with a runnable
/// example), `x_named => `, and its signature without `&self` and body.
macro_rules! unnamed {
    (
        $(#[$attr:meta])*
        $named:ident => pub fn $name:ident $(<$($g:ident),*>)? ($($arg:ident: $argty:ty),*) -> $ret:ty
        $(where $($w:tt)+)?
    ) => {
        $(#[$attr])*
        #[doc = ""]
        #[doc = concat!("The same as [`", stringify!($named), "`](Manager::", stringify!($named), ") with the empty name.")]
        pub fn $name $(<$($g),*>)? (&self $(, $arg: $argty)*) -> $ret
        $(where $($w)+)?
        {
            self.$named("" $(, $arg)*)
        }
    };
}

mod client;
mod dict;
mod list;
mod protocol;
mod queue;
mod served;
mod server;
mod sync;

mod custom;
mod namespace;
mod refs;
mod schema;
mod value;

pub use dict::DictProxy;
pub use list::ListProxy;
pub use queue::QueueProxy;
pub use sync::{
    Acquired, BarrierProxy, ConditionProxy, EventProxy, LockProxy, LockProxyGuard, RLockProxy, SemaphoreProxy,
};

pub use custom::{Args, ObjectProxy, Reply, Served};
pub use namespace::NamespaceProxy;
pub use value::{ArrayProxy, ValueProxy};

use client::{Client, Info};

/// Bytes of the accept queue (hellos are short).
const ACCEPT_CAPACITY: usize = 64 * 1024;
/// How long `start` waits for the server to come up.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long `shutdown` waits for the server to exit before killing it.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A proxy's reference to its object: manager, object id, type
/// fingerprint. Serializes as exactly that.
#[derive(Debug, Clone)]
struct ObjRef {
    info: Arc<Info>,
    id: u64,
    fingerprint: u64,
}

impl ObjRef {
    fn client(&self) -> Result<Arc<Client>> {
        refs::touch(&self.info);
        Client::of(&self.info)
    }

    /// A request for this object.
    fn request(&self, op: u8) -> Vec<u8> {
        protocol::request(op, self.id)
    }

    /// Sends a request for this object; the reply's payload.
    fn call(&self, req: &[u8]) -> Result<Vec<u8>> {
        let reply = self.client()?.call(req)?;
        protocol::payload(&reply).map(<[u8]>::to_vec)
    }

    /// Sends a request that returns a count.
    fn len(&self) -> Result<usize> {
        let p = self.call(&self.request(protocol::op::LEN))?;
        let n = p.try_into().map(u64::from_le_bytes).map_err(|_| Error::Corrupt { what: "manager reply (len)" })?;
        usize::try_from(n).map_err(|_| Error::Corrupt { what: "manager reply (len)" })
    }

    fn clear(&self) -> Result<()> {
        self.call(&self.request(protocol::op::CLEAR)).map(drop)
    }

    fn serialize_as<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        refs::serialize(&self.info, self.id, self.fingerprint, s)
    }

    fn deserialize_as<'de, D: Deserializer<'de>>(d: D, expected: u64) -> std::result::Result<ObjRef, D::Error> {
        let (info, id) = refs::deserialize(d, expected)?;
        Ok(ObjRef { info, id, fingerprint: expected })
    }
}

/// The starting process's part of a manager: stops the server on drop.
#[derive(Debug)]
struct Owner {
    info: Arc<Info>,
    process: Mutex<Option<Process<()>>>,
    /// The starting process: a forked child that inherited this handle
    /// does not stop the server.
    pid: u32,
}

impl Owner {
    fn stop(&self) -> Result<()> {
        if crate::sys::process::pid() != self.pid {
            return Ok(());
        }
        let Some(mut p) = self.process.lock().take() else { return Ok(()) };
        // Bounded: a stopped (SIGSTOP) server must not hang a drop.
        let answered = Client::of(&self.info)
            .and_then(|c| c.call_timeout(&protocol::request(protocol::op::SHUTDOWN, 0), STOP_LIMIT));
        client::forget(self.info.nonce);
        self.info.accept.close();
        if let Some(name) = &self.info.name {
            // Proxies of this process may keep the queue open: the name
            // goes now, so that a new manager can take it.
            let _ = crate::shm::segment::Segment::unlink(name);
        }
        if answered.is_err() || p.join_timeout(STOP_LIMIT).is_err() {
            // Not answering, or slow to exit: the server holds nothing that
            // a kill could leave inconsistent (its state dies with it).
            let _ = p.kill();
            let _ = p.join_timeout(STOP_LIMIT);
        }
        Ok(())
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Bounded: STOP_LIMIT, then a kill.
        let _ = self.stop();
    }
}

/// A manager: a server process that owns dicts and lists shared by
/// processes through proxies ([`DictProxy`], [`ListProxy`]), and
/// namespaces ([`NamespaceProxy`]), values ([`ValueProxy`]), arrays
/// ([`ArrayProxy`]) and objects of your own types ([`Served`],
/// [`ObjectProxy`]). A proxy can be a value inside another object of the
/// same manager (a dict of lists); objects live as long as the manager.
///
/// [`Manager::start`] starts the server (a daemon child: it dies with this
/// process, even by SIGKILL); [`shutdown`](Manager::shutdown), or dropping
/// the last clone of the starting handle, stops it. A `Manager` (or any
/// proxy) is a cheap `Clone` handle that can be passed to a child process
/// as an argument under every start method; a named manager
/// ([`ManagerBuilder::name`]) can be reached from unrelated processes with
/// [`Manager::connect`].
///
/// Proxies do not keep the server alive: keep the starting handle as long
/// as the proxies are in use (`Manager::start()?.dict()?` alone makes a
/// dict whose server stops at the end of the statement, as with Python's
/// `Manager().dict()`).
///
/// Each process talks to the server over one shared-memory pipe (no
/// sockets), shared by all its proxies and threads; a call is one request
/// and one reply, and batch calls ([`DictProxy::extend`],
/// [`DictProxy::get_many`], [`ListProxy::extend`]) send many requests
/// before reading the replies. The server applies the requests that are
/// waiting under one lock acquisition.
///
/// If the server dies, every proxy call (including one blocked at the time)
/// returns [`Error::ManagerDead`], promptly and for good; a manager
/// restarted under the same name never answers the old proxies.
///
/// Security: the segments (accept queue, pipes) are created with mode 0600:
/// only processes of the same user can reach the server, and
/// [`DictProxy::update`] runs a function of the caller's binary in the
/// server, which such a process could do anyway (it may `ptrace` the
/// server). There is no authentication key as in Python, and no socket.
///
/// # Examples
///
/// ```
/// use shmproc::{DictProxy, ListProxy, Manager};
///
/// fn work((d, l, i): (DictProxy<String, u64>, ListProxy<u64>, u64)) {
///     d.insert(format!("worker-{i}"), i * i).expect("insert");
///     l.push(i).expect("push");
/// }
///
/// let mgr = Manager::start()?;
/// let d = mgr.dict::<String, u64>()?;
/// let l = mgr.list::<u64>()?;
/// let mut kids = (0..3)
///     .map(|i| shmproc::Process::spawn(work, (d.clone(), l.clone(), i)))
///     .collect::<Result<Vec<_>, _>>()?;
/// for k in &mut kids {
///     k.join()?;
/// }
/// assert_eq!(d.len()?, 3);
/// assert_eq!(d.get(&"worker-2".to_string())?, Some(4));
/// let mut pushed = l.to_vec()?;
/// pushed.sort();
/// assert_eq!(pushed, [0, 1, 2]);
/// mgr.shutdown()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `multiprocessing.Manager()` (a `SyncManager`) with its `dict()`
/// and `list()`. Differences: proxies are typed; keys are equal when their
/// encodings are equal; there is no authkey (same-user shared memory
/// instead of a socket); `d[k] += 1` is written
/// [`d.update(k, add, 1)`](DictProxy::update) and is atomic.
#[derive(Debug, Clone)]
pub struct Manager {
    info: Arc<Info>,
    owner: Option<Arc<Owner>>,
}

/// Options for a new [`Manager`]: a name, a start method.
///
/// # Examples
///
/// ```
/// use shmproc::{Manager, StartMethod};
///
/// let name = format!("doc-mgr-builder-{}", std::process::id());
/// let mgr = Manager::builder().name(&name).start_method(StartMethod::Spawn).start()?;
/// assert_eq!(mgr.name(), Some(name.as_str()));
/// mgr.shutdown()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `SyncManager(address=...)` before `start()`, and
/// `get_context(method).Manager()`.
#[derive(Debug, Clone, Default)]
pub struct ManagerBuilder {
    name: Option<String>,
    method: Option<StartMethod>,
}

impl ManagerBuilder {
    /// Gives the manager a name (the name of its accept queue), so that
    /// unrelated processes can [`Manager::connect`] to it. The name goes
    /// when the manager stops.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-mgr-name-{}", std::process::id());
    /// let mgr = shmproc::Manager::builder().name(&name).start()?;
    /// let other = shmproc::Manager::connect(&name)?; // typically in another program
    /// assert_eq!(other.pid(), mgr.pid());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `SyncManager(address=...)`; a name here, not a socket
    /// address.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// How the server process starts (default:
    /// [`start_method()`](crate::start_method)).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::builder().start_method(shmproc::StartMethod::ForkServer).start()?;
    /// assert!(mgr.is_alive());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `get_context(method).Manager()`.
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Starts the server process and waits until it accepts requests.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::builder().start()?;
    /// assert_ne!(mgr.pid(), std::process::id());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Queue::new`], [`Pipe::new`] and
    /// [`ProcessBuilder::spawn`](crate::ProcessBuilder::spawn) (a process
    /// limit, the fork start method in a threaded program, ...);
    /// [`Error::ProcessFailed`] if the server died while starting;
    /// [`Error::Exists`] if the name is taken. Nothing is left behind.
    ///
    /// Python: `manager.start()`.
    pub fn start(self) -> Result<Manager> {
        let nonce = loop {
            let n = crate::sys::random_u64().map_err(|e| Error::os("getrandom", e))?;
            if n != 0 {
                break n;
            }
        };
        let mut qb = Queue::<Vec<u8>>::builder().capacity_bytes(ACCEPT_CAPACITY);
        if let Some(n) = &self.name {
            qb = qb.name(n);
        }
        let accept = qb.build_manager_accept()?;
        // While this process lives, the acceptor never sees "every
        // producer gone".
        accept.register_producer()?;
        let (mine, theirs) = Pipe::new()?;
        let mut pb = Process::builder().daemon(true).name("Manager");
        if let Some(m) = self.method {
            pb = pb.start_method(m);
        }
        let args = server::ServerArgs { accept: accept.clone(), boot: theirs, nonce };
        let mut p = pb.spawn(server::server_main, args)?;
        let started = Instant::now();
        let ack = loop {
            match mine.recv_bytes_timeout(Duration::from_millis(20)) {
                Ok(a) => break client::parse_ack(&a),
                Err(RecvTimeoutError::Timeout) if p.is_alive() && started.elapsed() < START_LIMIT => {}
                Err(RecvTimeoutError::Timeout) if p.is_alive() => break Err(Error::Timeout),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    break Err(p.join().err().map(Error::from).unwrap_or(Error::ProcessFailed {
                        pid: p.pid(),
                        name: p.name().to_owned(),
                        failure: crate::ProcessFailure::TaskError("the manager server exited while starting".into()),
                    }));
                }
                Err(e) => break Err(e.into()),
            }
        };
        let server = match ack {
            Ok((n, server)) if n == nonce => server,
            other => {
                let _ = p.kill();
                let _ = p.join_timeout(STOP_LIMIT);
                return Err(other.err().unwrap_or(Error::Corrupt { what: "manager ack" }));
            }
        };
        let info = refs::remember(Arc::new(Info { nonce, accept, server, name: self.name }));
        Client::install(nonce, mine)?;
        let owner =
            Arc::new(Owner { info: info.clone(), process: Mutex::new(Some(p)), pid: crate::sys::process::pid() });
        Ok(Manager { info, owner: Some(owner) })
    }
}

impl Manager {
    /// Starts a manager's server process with the default options.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<String, i32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.get(&"a".into())?, Some(1));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`ManagerBuilder::start`].
    ///
    /// Python: `multiprocessing.Manager()` (which also starts the server).
    pub fn start() -> Result<Manager> {
        ManagerBuilder::default().start()
    }

    /// Options: a name, a start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::builder().start()?;
    /// # drop(mgr);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `SyncManager(address=...)` then `start()`.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to the manager started under `name` (by any process of
    /// this user). The handle does not own the server: dropping it stops
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-mgr-connect-{}", std::process::id());
    /// let mgr = shmproc::Manager::builder().name(&name).start()?;
    /// mgr.dict_named::<String, u32>("config")?.insert("workers".into(), 4)?;
    ///
    /// let other = shmproc::Manager::connect(&name)?; // typically in another program
    /// assert_eq!(other.dict_named::<String, u32>("config")?.get(&"workers".into())?, Some(4));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] if no manager has that name; [`Error::ManagerDead`]
    /// if its server is gone; as for [`Pipe::new`].
    ///
    /// Python: `BaseManager(address=..., authkey=...).connect()`.
    pub fn connect(name: &str) -> Result<Manager> {
        let accept = Queue::<Vec<u8>>::open(name)?;
        let (conn, nonce, server) = client::handshake(&accept, 0, None)?;
        Client::install(nonce, conn)?;
        let info = refs::remember(Arc::new(Info { nonce, accept, server, name: Some(name.to_owned()) }));
        Ok(Manager { info, owner: None })
    }

    /// The server process's pid.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert_ne!(mgr.pid(), std::process::id());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `manager._process.pid`.
    pub fn pid(&self) -> u32 {
        self.info.server.pid
    }

    /// The manager's name, if it has one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Manager::start()?.name(), None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `manager.address`.
    pub fn name(&self) -> Option<&str> {
        self.info.name.as_deref()
    }

    /// Whether the server process is alive (the OS says so; not fooled by
    /// pid reuse).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert!(mgr.is_alive());
    /// mgr.shutdown()?;
    /// assert!(!mgr.is_alive());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `manager._process.is_alive()`.
    pub fn is_alive(&self) -> bool {
        token::liveness(self.info.server) == Liveness::Alive
    }

    /// Stops the server (waiting up to 10 s for it to answer and up to
    /// 10 s for it to exit, then killing it). Every proxy of this manager then returns
    /// [`Error::ManagerDead`]. Only the starting handle (and its clones)
    /// may stop the manager; dropping the last of them does it too.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// mgr.shutdown()?;
    /// assert!(matches!(l.push(1), Err(shmproc::Error::ManagerDead)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] on a handle from
    /// [`connect`](Manager::connect) or received from another process.
    ///
    /// Python: `manager.shutdown()`.
    pub fn shutdown(&self) -> Result<()> {
        match &self.owner {
            Some(o) => o.stop(),
            None => Err(Error::InvalidArgument { what: "only the process that started a manager can shut it down" }),
        }
    }

    fn new_object(&self, op: u8, fingerprint: u64, name: &str) -> Result<ObjRef> {
        let mut req = protocol::request(op, 0);
        req.extend_from_slice(&fingerprint.to_le_bytes());
        req.extend_from_slice(name.as_bytes());
        let reply = Client::of(&self.info)?.call(&req)?;
        let p = protocol::payload(&reply)?;
        let id = p.try_into().map(u64::from_le_bytes).map_err(|_| Error::Corrupt { what: "manager reply (id)" })?;
        Ok(ObjRef { info: self.info.clone(), id, fingerprint })
    }

    unnamed! {
        /// A new, empty dict on the server.
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let d = mgr.dict::<u32, String>()?;
        /// d.insert(1, "one".into())?;
        /// assert_eq!(d.items()?, [(1, "one".to_string())]);
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::ManagerDead`] if the server is gone; as for
        /// [`Pipe::new`] on this process's first call.
        ///
        /// Python: `manager.dict()`.
        dict_named => pub fn dict<K, V>() -> Result<DictProxy<K, V>>
        where
            K: Serialize + serde::de::DeserializeOwned + 'static,
            V: Serialize + serde::de::DeserializeOwned + 'static,
    }

    /// The dict called `name` on the server, made empty if there is none
    /// yet (the empty name makes a new anonymous dict).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.dict_named::<String, u8>("scores")?.insert("ann".into(), 9)?;
    /// assert_eq!(mgr.dict_named::<String, u8>("scores")?.len()?, 1);
    /// assert!(matches!(mgr.dict_named::<u8, u8>("scores"), Err(shmproc::Error::LayoutMismatch { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] if an object of that name exists with another
    /// kind or other element types; as for [`dict`](Manager::dict).
    ///
    /// Python: `manager.register(...)` plus a shared dict.
    pub fn dict_named<K, V>(&self, name: &str) -> Result<DictProxy<K, V>>
    where
        K: Serialize + serde::de::DeserializeOwned + 'static,
        V: Serialize + serde::de::DeserializeOwned + 'static,
    {
        let fp = DictProxy::<K, V>::fingerprint();
        self.new_object(protocol::op::NEW_DICT, fp, name).map(DictProxy::wrap)
    }

    unnamed! {
        /// A new, empty list on the server.
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let l = mgr.list::<f64>()?;
        /// l.push(1.5)?;
        /// assert_eq!(l.to_vec()?, [1.5]);
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// As for [`dict`](Manager::dict).
        ///
        /// Python: `manager.list()`.
        list_named => pub fn list<T>() -> Result<ListProxy<T>>
        where
            T: Serialize + serde::de::DeserializeOwned + 'static,
    }

    /// The list called `name` on the server, made empty if there is none
    /// yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.list_named::<u8>("log")?.push(1)?;
    /// assert_eq!(mgr.list_named::<u8>("log")?.to_vec()?, [1]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`dict_named`](Manager::dict_named).
    ///
    /// Python: `manager.register(...)` plus a shared list.
    pub fn list_named<T>(&self, name: &str) -> Result<ListProxy<T>>
    where
        T: Serialize + serde::de::DeserializeOwned + 'static,
    {
        let fp = ListProxy::<T>::fingerprint();
        self.new_object(protocol::op::NEW_LIST, fp, name).map(ListProxy::wrap)
    }
}

/// Blocking objects (Python's `SyncManager` types): queues, locks,
/// semaphores, events, conditions, barriers.
impl Manager {
    fn new_sync(&self, kind: u8, arg: u64, arg2: u64, fingerprint: u64, name: &str) -> Result<ObjRef> {
        let mut req = protocol::request(protocol::op::NEW_SYNC, 0);
        req.push(kind);
        for w in [arg, arg2, fingerprint] {
            req.extend_from_slice(&w.to_le_bytes());
        }
        req.extend_from_slice(name.as_bytes());
        let reply = Client::of(&self.info)?.call(&req)?;
        let p = protocol::payload(&reply)?;
        let id = p.try_into().map(u64::from_le_bytes).map_err(|_| Error::Corrupt { what: "manager reply (id)" })?;
        Ok(ObjRef { info: self.info.clone(), id, fingerprint })
    }

    unnamed! {
        /// A new queue on the server holding at most `maxsize` items (0:
        /// unbounded).
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let q = mgr.queue::<String>(0)?;
        /// q.put("job".into())?;
        /// assert_eq!(q.get()?, "job");
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::ManagerDead`] if the server is gone; as for [`Pipe::new`]
        /// on this process's first call.
        ///
        /// Python: `manager.Queue(maxsize)`.
        queue_named => pub fn queue<T>(maxsize: usize) -> Result<QueueProxy<T>>
        where
            T: Serialize + serde::de::DeserializeOwned + 'static,
    }

    /// The queue called `name` on the server, made (with `maxsize`) if
    /// there is none yet (the empty name makes a new anonymous queue).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.queue_named::<u8>("jobs", 0)?.put(1)?;
    /// assert_eq!(mgr.queue_named::<u8>("jobs", 0)?.get()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Remote`] if an object of that name exists with another
    /// kind or item type; as for [`queue`](Manager::queue).
    ///
    /// Python: `manager.register(...)` plus a shared queue.
    pub fn queue_named<T>(&self, name: &str, maxsize: usize) -> Result<QueueProxy<T>>
    where
        T: Serialize + serde::de::DeserializeOwned + 'static,
    {
        self.new_sync(served::kind::QUEUE, maxsize as u64, 0, QueueProxy::<T>::fingerprint(), name)
            .map(QueueProxy::wrap)
    }

    /// A new joinable queue on the server (a [`QueueProxy`] whose
    /// [`task_done`](QueueProxy::task_done) and [`join`](QueueProxy::join)
    /// work).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.joinable_queue::<u8>(0)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue`](Manager::queue).
    ///
    /// Python: `manager.JoinableQueue(maxsize)`.
    pub fn joinable_queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>>
    where
        T: Serialize + serde::de::DeserializeOwned + 'static,
    {
        self.new_sync(served::kind::QUEUE, maxsize as u64, 1, QueueProxy::<T>::fingerprint(), "").map(QueueProxy::wrap)
    }

    unnamed! {
        /// A new lock on the server.
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let l = mgr.lock()?;
        /// let _g = l.lock()?;
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// As for [`queue`](Manager::queue).
        ///
        /// Python: `manager.Lock()`.
        lock_named => pub fn lock() -> Result<LockProxy>
    }

    /// The lock called `name` on the server, made if there is none yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let a = mgr.lock_named("files")?;
    /// let _g = a.lock()?;
    /// assert!(mgr.lock_named("files")?.try_acquire().is_err(), "the same lock");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue_named`](Manager::queue_named).
    ///
    /// Python: `manager.register(...)` plus a shared lock.
    pub fn lock_named(&self, name: &str) -> Result<LockProxy> {
        let fp = LockProxy::fingerprint();
        self.new_sync(served::kind::LOCK, 0, 0, fp, name).map(LockProxy::wrap)
    }

    /// A new re-entrant lock on the server.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.rlock()?;
    /// let _a = l.lock()?;
    /// let _b = l.lock()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue`](Manager::queue).
    ///
    /// Python: `manager.RLock()`.
    pub fn rlock(&self) -> Result<RLockProxy> {
        let fp = RLockProxy::fingerprint();
        self.new_sync(served::kind::LOCK, 0, 1, fp, "").map(RLockProxy::wrap)
    }

    /// A new semaphore on the server with `value` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(1)?;
    /// s.acquire()?;
    /// s.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue`](Manager::queue).
    ///
    /// Python: `manager.Semaphore(value)`.
    pub fn semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        let fp = SemaphoreProxy::fingerprint();
        self.new_sync(served::kind::SEMAPHORE, value, 0, fp, "").map(SemaphoreProxy::wrap)
    }

    /// A new bounded semaphore: a release above `value` is an error.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.bounded_semaphore(1)?;
    /// assert!(matches!(s.release(), Err(shmproc::Error::InvalidArgument { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue`](Manager::queue).
    ///
    /// Python: `manager.BoundedSemaphore(value)`.
    pub fn bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        let fp = SemaphoreProxy::fingerprint();
        self.new_sync(served::kind::SEMAPHORE, value, 1, fp, "").map(SemaphoreProxy::wrap)
    }

    unnamed! {
        /// A new event on the server (not set).
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let e = mgr.event()?;
        /// e.set()?;
        /// e.wait()?;
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// As for [`queue`](Manager::queue).
        ///
        /// Python: `manager.Event()`.
        event_named => pub fn event() -> Result<EventProxy>
    }

    /// The event called `name` on the server, made if there is none yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.event_named("ready")?.set()?;
    /// assert!(mgr.event_named("ready")?.is_set()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue_named`](Manager::queue_named).
    pub fn event_named(&self, name: &str) -> Result<EventProxy> {
        let fp = EventProxy::fingerprint();
        self.new_sync(served::kind::EVENT, 0, 0, fp, name).map(EventProxy::wrap)
    }

    /// A new condition on the server with a re-entrant lock of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let _g = c.lock()?;
    /// c.notify_all()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`queue`](Manager::queue).
    ///
    /// Python: `manager.Condition()`.
    pub fn condition(&self) -> Result<ConditionProxy> {
        let fp = ConditionProxy::fingerprint();
        self.new_sync(served::kind::CONDITION, 0, 0, fp, "").map(ConditionProxy::wrap)
    }

    fn condition_over(&self, lock: &ObjRef) -> Result<ConditionProxy> {
        if lock.info.nonce != self.info.nonce {
            return Err(Error::InvalidArgument { what: "the lock belongs to another manager" });
        }
        let fp = ConditionProxy::fingerprint();
        self.new_sync(served::kind::CONDITION, lock.id, 0, fp, "").map(ConditionProxy::wrap)
    }

    /// A new condition on the server over an existing lock of this
    /// manager: holding `lock` is holding the condition's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.lock()?;
    /// let c = mgr.condition_with_lock(&l)?;
    /// let _g = l.lock()?;
    /// c.notify()?; // the caller holds the condition's lock
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `lock` belongs to another manager; as
    /// for [`queue`](Manager::queue).
    ///
    /// Python: `manager.Condition(lock)`.
    pub fn condition_with_lock(&self, lock: &LockProxy) -> Result<ConditionProxy> {
        self.condition_over(&lock.obj)
    }

    /// As [`condition_with_lock`](Manager::condition_with_lock) over a
    /// re-entrant lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.rlock()?;
    /// let c = mgr.condition_with_rlock(&l)?;
    /// let _g = c.lock()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`condition_with_lock`](Manager::condition_with_lock).
    ///
    /// Python: `manager.Condition(rlock)`.
    pub fn condition_with_rlock(&self, lock: &RLockProxy) -> Result<ConditionProxy> {
        self.condition_over(&lock.obj)
    }

    /// A new barrier on the server for `parties` parties.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert_eq!(mgr.barrier(1)?.wait()?, 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Remote`] for 0 parties; as for [`queue`](Manager::queue).
    ///
    /// Python: `manager.Barrier(parties)`.
    pub fn barrier(&self, parties: u64) -> Result<BarrierProxy> {
        self.barrier_inner(parties, 0)
    }

    /// A new barrier whose `wait` (without a timeout of its own) breaks it
    /// after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier_with_timeout(2, std::time::Duration::from_millis(1))?;
    /// assert!(matches!(b.wait(), Err(shmproc::BarrierError::Broken { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`barrier`](Manager::barrier).
    ///
    /// Python: `manager.Barrier(parties, timeout=t)`.
    pub fn barrier_with_timeout(&self, parties: u64, timeout: Duration) -> Result<BarrierProxy> {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.barrier_inner(parties, ns)
    }

    fn barrier_inner(&self, parties: u64, timeout_ns: u64) -> Result<BarrierProxy> {
        let fp = BarrierProxy::fingerprint();
        self.new_sync(served::kind::BARRIER, parties, timeout_ns, fp, "").map(BarrierProxy::wrap)
    }
}

impl Serialize for Manager {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.info.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Manager {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Manager { info: refs::remember(Arc::new(Info::deserialize(d)?)), owner: None })
    }
}
