//! `NamespaceProxy`: named fields of any serde type, held by the manager's
//! server (Python's `manager.Namespace()`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::manager::protocol::{self, Reader, op};
use crate::manager::{Manager, schema};

/// The fingerprint of a field's type.
fn field_fingerprint<T: DeserializeOwned>() -> u64 {
    schema::fingerprint::<T>("shmproc::NamespaceProxy field")
}

proxy_common! {
    /// A proxy for a namespace in a [`Manager`]'s server: named fields, each
    /// of its own type.
    ///
    /// Each field keeps a fingerprint of the type it was set with (its serde
    /// shape: struct and field names, primitive kinds, ..., the same in every
    /// build of the same source); reading it as another type is
    /// [`Error::LayoutMismatch`], not a garbled value. A field may hold a
    /// proxy of the same manager ([`DictProxy`](crate::DictProxy),
    /// [`ListProxy`](crate::ListProxy), ...): reading it back gives a working
    /// proxy, in any process.
    ///
    /// A cheap `Clone`, `Send + Sync`; serializes as a reference to the
    /// namespace (pass it to children; a named one,
    /// [`Manager::namespace_named`], is reachable through
    /// [`Manager::connect`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("x", &1i32)?;
    /// ns.set("name", &String::from("run-7"))?;
    /// assert_eq!(ns.get::<i32>("x")?, Some(1));
    /// assert!(matches!(ns.get::<String>("x"), Err(shmproc::Error::LayoutMismatch { .. })));
    /// assert_eq!(ns.fields()?, ["name", "x"]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `ns = manager.Namespace()`; `ns.x = 1` is `ns.set("x", &1)`,
    /// `ns.x` is `ns.get::<i32>("x")` (`None` where Python raises
    /// `AttributeError`). Differences: typed reads; `fields` lists the names
    /// (Python: `vars(ns)`).
    pub struct NamespaceProxy,
    "shmproc::NamespaceProxy"
}

impl NamespaceProxy {
    fn named(&self, op: u8, field: &str) -> Vec<u8> {
        let mut req = self.obj.request(op);
        req.extend_from_slice(field.as_bytes());
        req
    }

    fn flag(p: &[u8]) -> Result<bool> {
        match p {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Error::Corrupt { what: "manager reply (bool)" }),
        }
    }

    /// Sets field `name` to `value` (of any type; a field set before with
    /// another type takes the new one).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("ratio", &0.5f64)?;
    /// ns.set("ratio", &String::from("half"))?; // a new type: fine
    /// assert_eq!(ns.get::<String>("ratio")?.as_deref(), Some("half"));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone; [`Error::Codec`] if
    /// `value` does not encode (a proxy of another, unnamed manager does
    /// encode, but reads back only where that manager is known).
    ///
    /// Python: `ns.name = value`.
    #[doc(alias = "__setattr__")]
    pub fn set<T>(&self, name: &str, value: &T) -> Result<()>
    where
        T: Serialize + DeserializeOwned + 'static,
    {
        let mut req = self.obj.request(op::NS_SET);
        protocol::put_bytes(&mut req, name.as_bytes())?;
        req.extend_from_slice(&field_fingerprint::<T>().to_le_bytes());
        codec::encode_append(value, &mut req)?;
        self.obj.call(&req).map(drop)
    }

    /// Field `name` as a `T` (a copy), or `None` if there is no such field.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("ids", &vec![1u32, 2])?;
    /// assert_eq!(ns.get::<Vec<u32>>("ids")?, Some(vec![1, 2]));
    /// assert_eq!(ns.get::<Vec<u32>>("missing")?, None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] if the field was set with another type;
    /// [`Error::ManagerDead`] if the server is gone; [`Error::Codec`] if
    /// the value does not decode.
    ///
    /// Python: `ns.name` (`AttributeError` where this returns `None`).
    #[doc(alias = "__getattr__")]
    pub fn get<T>(&self, name: &str) -> Result<Option<T>>
    where
        T: DeserializeOwned + 'static,
    {
        let p = self.obj.call(&self.named(op::NS_GET, name))?;
        let bad = |_| Error::Corrupt { what: "manager reply (namespace field)" };
        let mut r = Reader::new(&p);
        match r.u8().map_err(bad)? {
            0 if r.is_empty() => Ok(None),
            1 => {
                let found = r.u64().map_err(bad)?;
                let expected = field_fingerprint::<T>();
                if found != expected {
                    return Err(Error::LayoutMismatch { expected, found });
                }
                codec::decode(r.rest()).map(Some)
            }
            _ => Err(Error::Corrupt { what: "manager reply (namespace field)" }),
        }
    }

    /// Removes field `name`; whether it was there.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("tmp", &())?;
    /// assert!(ns.remove("tmp")?);
    /// assert!(!ns.remove("tmp")?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `del ns.name`.
    #[doc(alias = "__delattr__")]
    pub fn remove(&self, name: &str) -> Result<bool> {
        Self::flag(&self.obj.call(&self.named(op::NS_REMOVE, name))?)
    }

    /// Whether field `name` is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("a", &1u8)?;
    /// assert!(ns.contains("a")?);
    /// assert!(!ns.contains("b")?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`remove`](Self::remove).
    ///
    /// Python: `hasattr(ns, name)`.
    pub fn contains(&self, name: &str) -> Result<bool> {
        Self::flag(&self.obj.call(&self.named(op::NS_CONTAINS, name))?)
    }

    /// The names of the fields, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let ns = mgr.namespace()?;
    /// ns.set("b", &1u8)?;
    /// ns.set("a", &2u8)?;
    /// assert_eq!(ns.fields()?, ["a", "b"]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`remove`](Self::remove).
    ///
    /// Python: `vars(ns).keys()`.
    pub fn fields(&self) -> Result<Vec<String>> {
        let p = self.obj.call(&self.obj.request(op::NS_FIELDS))?;
        protocol::sequence(&p, 1)?
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).map_err(|_| Error::Corrupt { what: "manager reply (field name)" }))
            .collect()
    }
}

impl Manager {
    unnamed! {
        /// A new, empty namespace on the server.
        ///
        /// # Examples
        ///
        /// ```
        /// let mgr = shmproc::Manager::start()?;
        /// let ns = mgr.namespace()?;
        /// assert!(ns.fields()?.is_empty());
        /// # Ok::<(), shmproc::Error>(())
        /// ```
        ///
        /// # Errors
        /// [`Error::ManagerDead`] if the server is gone.
        ///
        /// Python: `manager.Namespace()`.
        #[doc(alias = "Namespace")]
        namespace_named => pub fn namespace() -> Result<NamespaceProxy>
    }

    /// The namespace called `name`, made empty if there is none yet (the
    /// empty name makes a new anonymous one).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.namespace_named("cfg")?.set("debug", &true)?;
    /// assert_eq!(mgr.namespace_named("cfg")?.get::<bool>("debug")?, Some(true));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LayoutMismatch`] if an object of another kind has that name; as
    /// for [`namespace`](Manager::namespace).
    ///
    /// Python: a shared `Namespace` registered under a name.
    pub fn namespace_named(&self, name: &str) -> Result<NamespaceProxy> {
        self.create(op::NEW_NAMESPACE, NamespaceProxy::fingerprint(), name, |_| Ok(())).map(NamespaceProxy::wrap)
    }
}
