//! `DictProxy<K, V>`: a dict that lives in the manager's server.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::manager::protocol::{self, op};
use crate::manager::server::{UpdateCall, UpdateTrampoline};
use crate::process::task::TaskFn;
use crate::shm::fnref::FnRef;

/// Runs in the server: resolves `f` with its concrete type, decodes the
/// old value and the argument, calls `f`, encodes the new value.
fn update_trampoline<V, A>(f: FnRef, call: UpdateCall) -> Result<Option<Vec<u8>>, String>
where
    V: Serialize + DeserializeOwned + 'static,
    A: DeserializeOwned + 'static,
{
    let f: fn(Option<V>, A) -> Option<V> =
        f.resolve().map_err(|e| format!("cannot find the update function in the server: {e}"))?;
    let old = call.old.map(|b| codec::decode::<V>(&b)).transpose().map_err(|e| e.to_string())?;
    let arg: A = codec::decode(&call.arg).map_err(|e| e.to_string())?;
    f(old, arg).map(|v| codec::encode(&v)).transpose().map_err(|e| e.to_string())
}

/// Runs in the server: makes the task `T` again from its name `f` and its
/// captures (the request's argument bytes), decodes the old value, runs the
/// task, encodes the new value.
fn update_task_trampoline<V, T>(f: FnRef, call: UpdateCall) -> Result<Option<Vec<u8>>, String>
where
    V: Serialize + DeserializeOwned + 'static,
    T: TaskFn<Option<V>, Option<V>>,
{
    let task = T::__load(crate::process::task::TOKEN, f.to_words(), &call.arg)
        .map_err(|e| format!("cannot make the update task in the server: {e}"))?;
    let old = call.old.map(|b| codec::decode::<V>(&b)).transpose().map_err(|e| e.to_string())?;
    task.__call(old).map(|v| codec::encode(&v)).transpose().map_err(|e| e.to_string())
}

proxy_common! {
    /// A proxy for a dict in a [`Manager`](crate::Manager)'s server: every call
    /// is a request to the server, so every process holding a clone sees the
    /// same dict.
    ///
    /// Keys and values travel encoded (serde + postcard) and the server keeps
    /// the encodings: two keys are the same key when their encodings are equal
    /// (so `0.0` and `-0.0` are different keys, and a `HashMap` key's
    /// encoding depends on its iteration order: prefer `BTreeMap`s or plain
    /// values as keys). Iteration order is insertion order, as in Python.
    ///
    /// A proxy is a cheap `Clone`, `Send + Sync`, and serializes as (manager,
    /// object id, type fingerprint): pass it to a child process as an
    /// argument, or get it by name in any process with
    /// [`Manager::dict_named`](crate::Manager::dict_named).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<String, Vec<u32>>()?;
    /// d.insert("evens".into(), vec![0, 2, 4])?;
    /// assert!(d.contains_key(&"evens".into())?);
    /// assert_eq!(d.remove(&"evens".into())?, Some(vec![0, 2, 4]));
    /// assert!(d.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: a `DictProxy` from `manager.dict()`. Differences: typed; a get
    /// returns a copy (changing it changes nothing on the server, as in
    /// Python: `d[k].append(x)` is lost there too); read-modify-write is
    /// [`update`](DictProxy::update), atomic on the server.
    pub struct DictProxy<K, V>,
    "shmproc::DictProxy"
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    fn keyed(&self, op: u8, key: &K) -> Result<Vec<u8>> {
        let mut req = self.obj.request(op);
        codec::encode_append(key, &mut req)?;
        Ok(req)
    }

    fn insert_request(&self, key: &K, value: &V) -> Result<Vec<u8>> {
        let mut req = self.obj.request(op::INSERT);
        protocol::put_bytes(&mut req, &codec::encode(key)?)?;
        codec::encode_append(value, &mut req)?;
        Ok(req)
    }

    fn option(p: &[u8]) -> Result<Option<V>> {
        protocol::option(p)?.map(codec::decode).transpose()
    }

    /// Sets `key` to `value`; returns the previous value.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u8, u8>()?;
    /// assert_eq!(d.insert(1, 10)?, None);
    /// assert_eq!(d.insert(1, 11)?, Some(10));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone; [`Error::Codec`] if a
    /// value cannot be encoded or decoded.
    ///
    /// Python: `d[key] = value`.
    #[doc(alias = "__setitem__")]
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        Self::option(&self.obj.call(&self.insert_request(&key, &value)?)?)
    }

    /// The value of `key`, if any (a copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<String, u8>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.get(&"a".into())?, Some(1));
    /// assert_eq!(d.get(&"b".into())?, None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert).
    ///
    /// Python: `d.get(key)`; `d[key]` raises `KeyError` where this returns
    /// `None`.
    #[doc(alias = "__getitem__")]
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        Self::option(&self.obj.call(&self.keyed(op::GET, key)?)?)
    }

    /// Removes `key`; returns its value, if it was there.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u8, u8>()?;
    /// d.insert(1, 2)?;
    /// assert_eq!(d.remove(&1)?, Some(2));
    /// assert_eq!(d.remove(&1)?, None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert).
    ///
    /// Python: `d.pop(key, None)`; `del d[key]`.
    #[doc(alias = "pop")]
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        Self::option(&self.obj.call(&self.keyed(op::REMOVE, key)?)?)
    }

    /// Whether `key` is in the dict.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u8, ()>()?;
    /// d.insert(3, ())?;
    /// assert!(d.contains_key(&3)?);
    /// assert!(!d.contains_key(&4)?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert).
    ///
    /// Python: `key in d`.
    #[doc(alias = "__contains__")]
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        match self.obj.call(&self.keyed(op::CONTAINS, key)?)?.as_slice() {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Error::Corrupt { what: "manager reply (bool)" }),
        }
    }

    /// The number of entries.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u8, u8>()?;
    /// d.extend([(1, 1), (2, 2)])?;
    /// assert_eq!(d.len()?, 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `len(d)`.
    pub fn len(&self) -> Result<usize> {
        self.obj.len()
    }

    /// Whether the dict is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u8, u8>()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`len`](DictProxy::len).
    ///
    /// Python: `not d`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    fn sequence<T>(&self, op: u8, width: usize, each: impl Fn(&[&[u8]]) -> Result<T>) -> Result<Vec<T>> {
        let p = self.obj.call(&self.obj.request(op))?;
        protocol::sequence(&p, width)?.chunks_exact(width).map(each).collect()
    }

    /// The keys, in insertion order (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<char, u8>()?;
    /// d.extend([('b', 1), ('a', 2)])?;
    /// assert_eq!(d.keys()?, ['b', 'a']);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert).
    ///
    /// Python: `d.keys()` (a list here, not a view).
    pub fn keys(&self) -> Result<Vec<K>> {
        self.sequence(op::KEYS, 1, |s| codec::decode(s[0]))
    }

    /// The values, in insertion order of their keys (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<char, u8>()?;
    /// d.extend([('b', 1), ('a', 2)])?;
    /// assert_eq!(d.values()?, [1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert).
    ///
    /// Python: `d.values()`.
    pub fn values(&self) -> Result<Vec<V>> {
        self.sequence(op::VALUES, 1, |s| codec::decode(s[0]))
    }

    /// The entries, in insertion order (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<char, u8>()?;
    /// d.extend([('b', 1), ('a', 2)])?;
    /// assert_eq!(d.items()?, [('b', 1), ('a', 2)]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert).
    ///
    /// Python: `d.items()`; `dict(d)` is `d.items()?.into_iter().collect()`.
    #[doc(alias = "copy")]
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.sequence(op::ITEMS, 2, |s| Ok((codec::decode(s[0])?, codec::decode(s[1])?)))
    }

    /// Removes every entry.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u8, u8>()?;
    /// d.insert(1, 1)?;
    /// d.clear()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `d.clear()`.
    pub fn clear(&self) -> Result<()> {
        self.obj.clear()
    }

    /// Atomic read-modify-write on the server: sets `key` to
    /// `f(current value, arg)` (`None` removes it) and returns the new
    /// value. Updates of one dict run one at a time, and the new value is
    /// stored only if no other request changed the key's entry while `f`
    /// ran (else `f` runs again on the new entry, so `f` may run more than
    /// once; keep it free of side effects): concurrent `update`s from many
    /// processes lose nothing.
    ///
    /// `f` is a plain `fn` of this binary, named by its address (the server
    /// runs the same executable file; a server started from another binary
    /// refuses with an error). It runs in the server outside the manager's
    /// lock: other requests go on meanwhile, and `f` may use other objects
    /// of the manager, and this dict, but not update this dict (refused
    /// with [`Error::InvalidArgument`]). A panic in `f` fails this call
    /// (the entry is unchanged, the server lives on).
    ///
    /// # Examples
    ///
    /// ```
    /// fn add(old: Option<u64>, n: u64) -> Option<u64> {
    ///     Some(old.unwrap_or(0) + n)
    /// }
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<String, u64>()?;
    /// assert_eq!(d.update(&"hits".into(), add, 2)?, Some(2));
    /// assert_eq!(d.update(&"hits".into(), add, 3)?, Some(5));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Remote`] if `f` panicked, could not be found in the server,
    /// or a value failed to decode there, or if other requests changed the
    /// entry under many runs of `f` in a row; [`Error::InvalidArgument`] if
    /// called from inside an update of this same dict; as for
    /// [`insert`](DictProxy::insert).
    ///
    /// Python: `with lock: d[k] = f(d.get(k), arg)` (Python's `d[k] += 1`
    /// is not atomic).
    pub fn update<A>(&self, key: &K, f: fn(Option<V>, A) -> Option<V>, arg: A) -> Result<Option<V>>
    where
        A: Serialize + DeserializeOwned + 'static,
    {
        crate::manager::custom::refuse_own_call(self.obj.info.nonce, self.obj.id)?;
        let tramp: UpdateTrampoline = update_trampoline::<V, A>;
        let fnref = |e| Error::os("stat /proc/self/exe", e);
        let fns = codec::encode(&(FnRef::of(tramp).map_err(fnref)?, FnRef::of(f).map_err(fnref)?))?;
        let mut req = self.obj.request(op::UPDATE);
        protocol::put_bytes(&mut req, &fns)?;
        protocol::put_bytes(&mut req, &codec::encode(key)?)?;
        codec::encode_append(&arg, &mut req)?;
        Self::option(&self.obj.call(&req)?)
    }

    /// As [`update`](DictProxy::update), with a task instead of a function
    /// and its argument: a [`task!`](crate::task!) whose captures travel
    /// with the request (or a fn item, fn pointer or capture-free closure
    /// `fn(Option<V>) -> Option<V>`), run on the server, atomically.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<String, Vec<String>>()?;
    /// let (word, times) = (String::from("ha"), 3usize);
    /// let push = shmproc::task!((word, times) |old: Option<Vec<String>>| {
    ///     let mut v = old.unwrap_or_default();
    ///     v.extend(std::iter::repeat_n(word.clone(), *times));
    ///     Some(v)
    /// });
    /// assert_eq!(d.update_with(&"laughs".into(), push)?.map(|v| v.len()), Some(3));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`update`](DictProxy::update); [`Error::Codec`] if the
    /// captures cannot be encoded.
    ///
    /// Python: `with lock: d[k] = f(d.get(k))` with `f` a lambda or a
    /// `functools.partial`.
    pub fn update_with<T>(&self, key: &K, task: T) -> Result<Option<V>>
    where
        T: TaskFn<Option<V>, Option<V>>,
    {
        crate::manager::custom::refuse_own_call(self.obj.info.nonce, self.obj.id)?;
        let tramp: UpdateTrampoline = update_task_trampoline::<V, T>;
        let fnref = |e| Error::os("stat /proc/self/exe", e);
        let (function, captures) = task.__name(crate::process::task::TOKEN)?;
        let fns = codec::encode(&(FnRef::of(tramp).map_err(fnref)?, FnRef::from_words(function)))?;
        let mut req = self.obj.request(op::UPDATE);
        protocol::put_bytes(&mut req, &fns)?;
        protocol::put_bytes(&mut req, &codec::encode(key)?)?;
        req.extend_from_slice(&captures);
        Self::option(&self.obj.call(&req)?)
    }

    /// Inserts every pair, pipelined: the requests go out back to back and
    /// the server applies those that wait together, so a batch costs far
    /// less than one [`insert`](DictProxy::insert) per pair.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u32, u32>()?;
    /// d.extend((0..100).map(|i| (i, i * i)))?;
    /// assert_eq!(d.get(&9)?, Some(81));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`insert`](DictProxy::insert); the pairs before a failing
    /// one are inserted.
    ///
    /// Python: `d.update(mapping)`.
    #[doc(alias = "update")]
    #[doc(alias = "insert_many")]
    pub fn extend(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let reqs = pairs.into_iter().map(|(k, v)| self.insert_request(&k, &v));
        for r in self.obj.client()?.call_many(reqs)? {
            protocol::payload(&r)?;
        }
        Ok(())
    }

    /// The values of several keys, pipelined (see
    /// [`extend`](DictProxy::extend)).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let d = mgr.dict::<u32, u32>()?;
    /// d.extend([(1, 10), (2, 20)])?;
    /// assert_eq!(d.get_many(&[1, 3, 2])?, [Some(10), None, Some(20)]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get`](DictProxy::get).
    ///
    /// Python: `[d.get(k) for k in keys]`, one round trip each.
    pub fn get_many<'k>(&self, keys: impl IntoIterator<Item = &'k K>) -> Result<Vec<Option<V>>> {
        let reqs = keys.into_iter().map(|k| self.keyed(op::GET, k));
        self.obj.client()?.call_many(reqs)?.iter().map(|r| Self::option(protocol::payload(r)?)).collect()
    }
}
