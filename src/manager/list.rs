//! `ListProxy<T>`: a list that lives in the manager's server.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::Result;
use crate::manager::protocol::{self, op};

proxy_common! {
    /// A proxy for a list in a [`Manager`](crate::Manager)'s server: every
    /// call is a request to the server, so every process holding a clone sees
    /// the same list.
    ///
    /// Elements travel encoded (serde + postcard). A proxy is a cheap `Clone`,
    /// `Send + Sync`, and serializes as (manager, object id, type fingerprint),
    /// like [`DictProxy`](crate::DictProxy).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<String>()?;
    /// l.push("a".into())?;
    /// l.insert(0, "z".into())?;
    /// assert_eq!(l.to_vec()?, ["z", "a"]);
    /// assert_eq!(l.pop()?, Some("a".to_string()));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: a `ListProxy` from `manager.list()`. Differences: typed;
    /// indices are `usize` (no negative indices); `get` returns a copy.
    pub struct ListProxy<T>,
    "shmproc::ListProxy"
}

impl<T> ListProxy<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn push_request(&self, value: &T) -> Result<Vec<u8>> {
        let mut req = self.obj.request(op::PUSH);
        codec::encode_append(value, &mut req)?;
        Ok(req)
    }

    fn indexed(&self, op: u8, index: usize, value: &T) -> Result<Vec<u8>> {
        let mut req = self.obj.request(op);
        req.extend_from_slice(&(index as u64).to_le_bytes());
        codec::encode_append(value, &mut req)?;
        Ok(req)
    }

    fn option(p: &[u8]) -> Result<Option<T>> {
        protocol::option(p)?.map(codec::decode).transpose()
    }

    /// Appends `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.push(7)?;
    /// assert_eq!(l.to_vec()?, [7]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`](crate::Error::ManagerDead) if the server is
    /// gone; [`Error::Codec`](crate::Error::Codec) if a value cannot be
    /// encoded or decoded.
    ///
    /// Python: `l.append(value)`.
    #[doc(alias = "append")]
    pub fn push(&self, value: T) -> Result<()> {
        self.obj.call(&self.push_request(&value)?).map(drop)
    }

    /// Appends every value, pipelined (one round trip for many).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.len()?, 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](ListProxy::push); the values before a failing one
    /// are appended.
    ///
    /// Python: `l.extend(values)`.
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<()> {
        let reqs = values.into_iter().map(|v| self.push_request(&v));
        for r in self.obj.client()?.call_many(reqs)? {
            protocol::payload(&r)?;
        }
        Ok(())
    }

    /// The element at `index`, if there is one (a copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.push(5)?;
    /// assert_eq!(l.get(0)?, Some(5));
    /// assert_eq!(l.get(1)?, None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](ListProxy::push).
    ///
    /// Python: `l[index]` (which raises `IndexError` where this returns
    /// `None`).
    #[doc(alias = "__getitem__")]
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        let mut req = self.obj.request(op::LGET);
        req.extend_from_slice(&(index as u64).to_le_bytes());
        Self::option(&self.obj.call(&req)?)
    }

    /// Replaces the element at `index`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.push(5)?;
    /// l.set(0, 6)?;
    /// assert_eq!(l.get(0)?, Some(6));
    /// assert!(l.set(1, 0).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `index`
    /// is out of range; as for [`push`](ListProxy::push).
    ///
    /// Python: `l[index] = value`.
    #[doc(alias = "__setitem__")]
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.obj.call(&self.indexed(op::LSET, index, &value)?).map(drop)
    }

    /// Removes and returns the last element, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.extend([1, 2])?;
    /// assert_eq!(l.pop()?, Some(2));
    /// assert_eq!(l.pop()?, Some(1));
    /// assert_eq!(l.pop()?, None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](ListProxy::push).
    ///
    /// Python: `l.pop()` (which raises `IndexError` on an empty list).
    pub fn pop(&self) -> Result<Option<T>> {
        let mut req = self.obj.request(op::POP);
        req.push(0);
        req.extend_from_slice(&0u64.to_le_bytes());
        Self::option(&self.obj.call(&req)?)
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.remove(0)?, 1);
    /// assert!(l.remove(5).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `index`
    /// is out of range; as for [`push`](ListProxy::push).
    ///
    /// Python: `l.pop(index)`.
    pub fn remove(&self, index: usize) -> Result<T> {
        let mut req = self.obj.request(op::POP);
        req.push(1);
        req.extend_from_slice(&(index as u64).to_le_bytes());
        Self::option(&self.obj.call(&req)?)?.ok_or_else(|| crate::Error::Corrupt { what: "manager reply (pop)" })
    }

    /// Inserts `value` before `index` (at the end if `index` is past it).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.extend([1, 3])?;
    /// l.insert(1, 2)?;
    /// l.insert(99, 4)?;
    /// assert_eq!(l.to_vec()?, [1, 2, 3, 4]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](ListProxy::push).
    ///
    /// Python: `l.insert(index, value)`.
    pub fn insert(&self, index: usize, value: T) -> Result<()> {
        self.obj.call(&self.indexed(op::LINSERT, index, &value)?).map(drop)
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// assert_eq!(l.len()?, 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`](crate::Error::ManagerDead) if the server is
    /// gone.
    ///
    /// Python: `len(l)`.
    pub fn len(&self) -> Result<usize> {
        self.obj.len()
    }

    /// Whether the list is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`len`](ListProxy::len).
    ///
    /// Python: `not l`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A copy of the whole list.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.extend([3, 1, 2])?;
    /// assert_eq!(l.to_vec()?, [3, 1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](ListProxy::push).
    ///
    /// Python: `list(l)`, `l[:]`.
    #[doc(alias = "copy")]
    pub fn to_vec(&self) -> Result<Vec<T>> {
        let p = self.obj.call(&self.obj.request(op::TO_VEC))?;
        protocol::sequence(&p, 1)?.into_iter().map(codec::decode).collect()
    }

    /// Removes every element.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let l = mgr.list::<u8>()?;
    /// l.push(1)?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`len`](ListProxy::len).
    ///
    /// Python: `l.clear()`, `del l[:]`.
    pub fn clear(&self) -> Result<()> {
        self.obj.clear()
    }
}
