//! `ValueProxy<T>` and `ArrayProxy<T>`: one value, and a fixed-length
//! array, held by the manager's server.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::manager::protocol::{self, op};
use crate::manager::server::{UpdateCall, UpdateTrampoline};
use crate::shm::fnref::FnRef;

/// Runs in the server: resolves `f` with its concrete type, decodes the
/// value and the argument, calls `f`, encodes the new value.
fn value_trampoline<T, A>(f: FnRef, call: UpdateCall) -> std::result::Result<Option<Vec<u8>>, String>
where
    T: Serialize + DeserializeOwned + 'static,
    A: DeserializeOwned + 'static,
{
    let f: fn(T, A) -> T = f.resolve().map_err(|e| format!("cannot find the update function in the server: {e}"))?;
    let old = call.old.ok_or("a value has no current value")?;
    let old: T = codec::decode(&old).map_err(|e| e.to_string())?;
    let arg: A = codec::decode(&call.arg).map_err(|e| e.to_string())?;
    codec::encode(&f(old, arg)).map(Some).map_err(|e| e.to_string())
}

proxy_common! {
    /// A proxy for one value in a [`Manager`]'s server.
    ///
    /// A cheap `Clone`, `Send + Sync`; serializes as a reference to the value
    /// (pass it to children, store it in a manager's dict, list or namespace).
    ///
    /// # Examples
    ///
    /// ```
    /// fn double(v: i64, _: ()) -> i64 {
    ///     v * 2
    /// }
    /// let mgr = shmproc::Manager::start()?;
    /// let v = mgr.value(21i64)?;
    /// assert_eq!(v.update(double, ())?, 42);
    /// assert_eq!(v.set(&1)?, 42);
    /// assert_eq!(v.get()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `manager.Value('i', 0)`, whose `.value` is `get`/`set`.
    /// Differences: any serde type, not a ctypes code; [`update`](Self::update)
    /// is an atomic read-modify-write (Python's `v.value += 1` is not).
    pub struct ValueProxy<T>,
    "shmproc::ValueProxy"
}

impl<T> ValueProxy<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    /// The current value (a copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert_eq!(mgr.value(String::from("x"))?.get()?, "x");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone; [`Error::Codec`] if the
    /// value does not decode.
    ///
    /// Python: `v.value`.
    pub fn get(&self) -> Result<T> {
        codec::decode(&self.obj.call(&self.obj.request(op::VGET))?)
    }

    /// Sets the value; returns the previous one.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let v = mgr.value(1u8)?;
    /// assert_eq!(v.set(&2)?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get`](Self::get).
    ///
    /// Python: `v.value = x`.
    pub fn set(&self, value: &T) -> Result<T> {
        let mut req = self.obj.request(op::VSET);
        codec::encode_append(value, &mut req)?;
        codec::decode(&self.obj.call(&req)?)
    }

    /// Atomic read-modify-write on the server: sets the value to
    /// `f(value, arg)` and returns it. `f` is a plain `fn` of this binary
    /// and runs in the server, outside the manager's lock: updates of one
    /// value run one at a time, and if a [`set`](Self::set) changed the
    /// value while `f` ran, `f` runs again on the new value (so `f` may run
    /// more than once; keep it free of side effects). A panic fails this
    /// call only (the value is unchanged). `f` may use other objects of the
    /// manager, but not update this value (refused with
    /// [`Error::InvalidArgument`]).
    ///
    /// # Examples
    ///
    /// ```
    /// fn add(v: u64, n: u64) -> u64 {
    ///     v + n
    /// }
    /// let mgr = shmproc::Manager::start()?;
    /// let v = mgr.value(0u64)?;
    /// v.update(add, 2)?;
    /// assert_eq!(v.update(add, 3)?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Remote`] if `f` panicked or could not be found in the
    /// server, or if `set` calls changed the value under many runs of `f`
    /// in a row; [`Error::InvalidArgument`] if called from inside an update
    /// of this same value; as for [`get`](Self::get).
    ///
    /// Python: `with v.get_lock(): v.value = f(v.value, arg)`.
    pub fn update<A>(&self, f: fn(T, A) -> T, arg: A) -> Result<T>
    where
        A: Serialize + DeserializeOwned + 'static,
    {
        crate::manager::custom::refuse_own_call(self.obj.info.nonce, self.obj.id)?;
        let tramp: UpdateTrampoline = value_trampoline::<T, A>;
        let fnref = |e| Error::os("stat /proc/self/exe", e);
        let fns = codec::encode(&(FnRef::of(tramp).map_err(fnref)?, FnRef::of(f).map_err(fnref)?))?;
        let mut req = self.obj.request(op::VUPDATE);
        protocol::put_bytes(&mut req, &fns)?;
        codec::encode_append(&arg, &mut req)?;
        codec::decode(&self.obj.call(&req)?)
    }
}

proxy_common! {
    /// A proxy for a fixed-length array in a [`Manager`]'s server.
    ///
    /// A cheap `Clone`, `Send + Sync`; serializes as a reference to the array.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let a = mgr.array(&[1u32, 2, 3])?;
    /// a.set(0, &10)?;
    /// a.set_slice(1, &[20, 30])?;
    /// assert_eq!(a.to_vec()?, [10, 20, 30]);
    /// assert!(matches!(a.get(3), Err(shmproc::Error::InvalidArgument { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `manager.Array('i', [..])`. Differences: any serde type; the
    /// length is fixed as there; indices are `usize`.
    pub struct ArrayProxy<T>,
    "shmproc::ArrayProxy"
}

impl<T> ArrayProxy<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    /// The number of elements (fixed at creation).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert_eq!(mgr.array(&[0u8; 4])?.len()?, 4);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `len(a)`.
    pub fn len(&self) -> Result<usize> {
        let p = self.obj.call(&self.obj.request(op::ALEN))?;
        let n = p.try_into().map(u64::from_le_bytes).map_err(|_| Error::Corrupt { what: "manager reply (len)" })?;
        usize::try_from(n).map_err(|_| Error::Corrupt { what: "manager reply (len)" })
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert!(mgr.array::<u8>(&[])?.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`len`](Self::len).
    ///
    /// Python: `not a`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Element `index` (a copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert_eq!(mgr.array(&['a', 'b'])?.get(1)?, 'b');
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `index` is out of range; as for
    /// [`len`](Self::len); [`Error::Codec`] if the element does not decode.
    ///
    /// Python: `a[i]`.
    pub fn get(&self, index: usize) -> Result<T> {
        let mut req = self.obj.request(op::AGET);
        req.extend_from_slice(&(index as u64).to_le_bytes());
        codec::decode(&self.obj.call(&req)?)
    }

    /// Sets element `index`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let a = mgr.array(&[0i8; 2])?;
    /// a.set(1, &-1)?;
    /// assert_eq!(a.to_vec()?, [0, -1]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get`](Self::get).
    ///
    /// Python: `a[i] = x`.
    pub fn set(&self, index: usize, value: &T) -> Result<()> {
        let mut req = self.obj.request(op::ASET);
        req.extend_from_slice(&(index as u64).to_le_bytes());
        codec::encode_append(value, &mut req)?;
        self.obj.call(&req).map(drop)
    }

    /// Sets `values.len()` elements from `start`, all at once (no other
    /// request sees half of them) or, if they do not fit, none.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let a = mgr.array(&[0u8; 4])?;
    /// a.set_slice(2, &[7, 8])?;
    /// assert!(a.set_slice(3, &[1, 2]).is_err());
    /// assert_eq!(a.to_vec()?, [0, 0, 7, 8]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `start + values.len()` is past the
    /// end; as for [`set`](Self::set).
    ///
    /// Python: `a[start:start + len(values)] = values`.
    pub fn set_slice(&self, start: usize, values: &[T]) -> Result<()> {
        let mut req = self.obj.request(op::ASLICE);
        req.extend_from_slice(&(start as u64).to_le_bytes());
        for v in values {
            protocol::put_bytes(&mut req, &codec::encode(v)?)?;
        }
        self.obj.call(&req).map(drop)
    }

    /// Every element, in order (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert_eq!(mgr.array(&[1.5f32])?.to_vec()?, [1.5]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get`](Self::get).
    ///
    /// Python: `a[:]`.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let p = self.obj.call(&self.obj.request(op::AVEC))?;
        protocol::sequence(&p, 1)?.into_iter().map(codec::decode).collect()
    }
}

impl Manager {
    unnamed! {
        /// A new value on the server, set to `init`.
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let v = mgr.value((1u8, String::from("one")))?;
        /// assert_eq!(v.get()?.1, "one");
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::ManagerDead`] if the server is gone; [`Error::Codec`] if
        /// `init` does not encode.
        ///
        /// Python: `manager.Value(typecode, value)`.
        #[doc(alias = "Value")]
        value_named => pub fn value<T>(init: T) -> Result<ValueProxy<T>>
        where
            T: Serialize + DeserializeOwned + 'static,
    }

    /// The value called `name`, set to `init` if there is none yet (the
    /// empty name makes a new anonymous one).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.value_named("epoch", 1u32)?.set(&2)?;
    /// assert_eq!(mgr.value_named("epoch", 0u32)?.get()?, 2);
    /// assert!(mgr.value_named("epoch", 0i64).is_err(), "another type");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] if an object of that name exists with another
    /// kind or type; as for [`value`](Manager::value).
    ///
    /// Python: a shared `Value` registered under a name.
    pub fn value_named<T>(&self, name: &str, init: T) -> Result<ValueProxy<T>>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        let obj =
            self.create(op::NEW_VALUE, ValueProxy::<T>::fingerprint(), name, |req| codec::encode_append(&init, req))?;
        Ok(ValueProxy::wrap(obj))
    }

    unnamed! {
        /// A new array on the server, a copy of `init` (its length is fixed).
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let a = mgr.array(&vec![0u64; 8])?;
        /// assert_eq!(a.len()?, 8);
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// As for [`value`](Manager::value).
        ///
        /// Python: `manager.Array(typecode, sequence)`.
        #[doc(alias = "Array")]
        array_named => pub fn array<T>(init: &[T]) -> Result<ArrayProxy<T>>
        where
            T: Serialize + DeserializeOwned + 'static,
    }

    /// The array called `name`, a copy of `init` if there is none yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.array_named("slots", &[0u8; 3])?.set(2, &9)?;
    /// assert_eq!(mgr.array_named::<u8>("slots", &[])?.to_vec()?, [0, 0, 9]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`value_named`](Manager::value_named).
    ///
    /// Python: a shared `Array` registered under a name.
    pub fn array_named<T>(&self, name: &str, init: &[T]) -> Result<ArrayProxy<T>>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        let obj = self.create(op::NEW_ARRAY, ArrayProxy::<T>::fingerprint(), name, |req| {
            init.iter().try_for_each(|v| protocol::put_bytes(req, &codec::encode(v)?))
        })?;
        Ok(ArrayProxy::wrap(obj))
    }
}
