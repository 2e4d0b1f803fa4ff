//! `RawValue<T>` and `RawArray<T>`: lock-free shared values of 1, 2, 4 or
//! 8 bytes, every access one atomic load, store or add of that width.
#![allow(unsafe_code)] // one ShmSafe impl

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use bytemuck::Pod;

use crate::error::Result;
use crate::shared::array::{ArraySeg, Flavor};
use crate::shm::layout::{ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::shm::typed::Home;

/// Stops the build for a `T` that is not 1, 2, 4 or 8 bytes (evaluated
/// when a constructor is instantiated for `T`).
fn check_width<T>() {
    const {
        assert!(
            matches!(core::mem::size_of::<T>(), 1 | 2 | 4 | 8),
            "RawValue and RawArray hold types of 1, 2, 4 or 8 bytes; use Value or Array for others"
        )
    };
}

/// A std atomic integer used as the cell of a `T` of the same width.
trait Atom: ShmSafe {
    type Int: Pod;
    fn ld(&self) -> Self::Int;
    fn st(&self, v: Self::Int);
    fn add(&self, v: Self::Int) -> Self::Int;
}

// All Relaxed, as Python's Raw* promise nothing about ordering: each
// access is atomic (never torn) and nothing more. Ordering between
// processes comes from whatever they synchronise with (a lock, a queue).
macro_rules! atoms {
    ($($a:ty => $i:ty),*) => {$(
        impl Atom for $a {
            type Int = $i;
            #[inline]
            fn ld(&self) -> $i {
                self.load(Ordering::Relaxed)
            }
            #[inline]
            fn st(&self, v: $i) {
                self.store(v, Ordering::Relaxed)
            }
            #[inline]
            fn add(&self, v: $i) -> $i {
                self.fetch_add(v, Ordering::Relaxed)
            }
        }
    )*};
}
atoms!(AtomicU8 => u8, AtomicU16 => u16, AtomicU32 => u32, AtomicU64 => u64);

/// Runs `$body` with `$A` naming the atomic type as wide as `$t`.
macro_rules! with_atom {
    ($t:ty, $A:ident => $body:expr) => {
        match core::mem::size_of::<$t>() {
            1 => {
                type $A = AtomicU8;
                $body
            }
            2 => {
                type $A = AtomicU16;
                $body
            }
            4 => {
                type $A = AtomicU32;
                $body
            }
            8 => {
                type $A = AtomicU64;
                $body
            }
            _ => unreachable!("invariant: the width is checked at compile time by check_width"),
        }
    };
}

/// `x`'s bytes as the integer of the same width.
#[inline]
fn bits<T: Pod, I: Pod>(x: T) -> I {
    bytemuck::try_pod_read_unaligned(bytemuck::bytes_of(&x)).expect("invariant: with_atom picks I as wide as T")
}

#[inline]
fn load<A: Atom, T: Pod>(a: &A) -> T {
    bits(a.ld())
}

#[inline]
fn store<A: Atom, T: Pod>(a: &A, v: T) {
    a.st(bits(v))
}

#[inline]
fn fetch_add<A: Atom, T: Pod>(a: &A, v: T) -> T {
    bits(a.add(bits(v)))
}

mod sealed {
    pub trait Sealed {}
}

/// The integer types whose [`RawValue`] and [`RawArray`] offer
/// `fetch_add`: `u8`..`u64`, `i8`..`i64`, `usize`, `isize` (wrapping, as
/// the std atomics).
///
/// # Examples
///
/// ```
/// fn bump<T: shmproc::RawInt>(v: &shmproc::RawValue<T>, by: T) -> T {
///     v.fetch_add(by)
/// }
/// let v = shmproc::RawValue::new(1u16)?;
/// assert_eq!(bump(&v, 2), 1);
/// assert_eq!(v.load(), 3);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: the integer type codes (`'b'`, `'i'`, `'q'`, ...).
pub trait RawInt: Pod + Send + sealed::Sealed {}

macro_rules! raw_ints {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl RawInt for $t {}
    )*};
}
raw_ints!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// A `RawValue`'s cell: one word, of which the first `size_of::<T>()`
/// bytes are used.
#[repr(C)]
pub(crate) struct RawCell<T> {
    word: AtomicU64,
    _t: PhantomData<fn() -> T>,
}

// SAFETY: repr(C) over one atomic (PhantomData is zero-sized): no
// pointers, every bit pattern valid, interior-mutable.
unsafe impl<T: Pod + Send> ShmSafe for RawCell<T> {
    const TAG: &'static str = "shmproc::RawValue";
    const LAYOUT_HASH: u64 = layout_hash_mix(
        layout_hash("shmproc::RawValue", core::mem::size_of::<Self>(), core::mem::align_of::<Self>()),
        core::mem::size_of::<T>() as u64,
    );
}

/// A `T` of 1, 2, 4 or 8 bytes in shared memory, without a lock: every
/// access is one atomic load or store (Python's
/// `multiprocessing.RawValue`).
///
/// Loads and stores never tear; a read-modify-write other than
/// [`fetch_add`](RawValue::fetch_add) is not atomic (use [`Value`](crate::Value)
/// and its lock for those). A `T` of another size does not compile:
///
/// ```compile_fail
/// let v = shmproc::RawValue::new([0u8; 3]); // error: 1, 2, 4 or 8 bytes
/// ```
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::RawValue;
///
/// fn hits(v: RawValue<u64>) {
///     for _ in 0..1000 {
///         v.fetch_add(1);
///     }
/// }
///
/// let v = RawValue::new(0u64)?;
/// let mut kids: Vec<_> = (0..2).map(|_| shmproc::Process::spawn(hits, v.clone())).collect::<Result<_, _>>()?;
/// for k in &mut kids {
///     k.join()?;
/// }
/// assert_eq!(v.load(), 2000);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `RawValue('q', 0)` and `.value`; unlike Python's, a load or
/// store never tears and `fetch_add` is atomic.
pub struct RawValue<T: Pod + Send> {
    shared: Home<RawCell<T>>,
}

impl<T: Pod + Send> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue { shared: self.shared.clone() }
    }
}

impl<T: Pod + Send> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("type", &std::any::type_name::<T>())
            .field("segment", self.shared.segment())
            .finish()
    }
}

impl<T: Pod + Send> RawValue<T> {
    fn init(c: &RawCell<T>, v: T) {
        with_atom!(T, A => store::<A, T>(c.atom::<A>(), v))
    }

    /// An anonymous value, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::RawValue::new(-1i32)?;
    /// assert_eq!(v.load(), -1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `RawValue('i', -1)`.
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn new(value: T) -> Result<Self> {
        check_width::<T>();
        Ok(RawValue { shared: Home::anonymous(|c: &RawCell<T>| Self::init(c, value))? })
    }

    /// A named value that unrelated processes can [`open`](RawValue::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rawvalue-{}", std::process::id());
    /// let v = shmproc::RawValue::create(&name, 1.5f64)?;
    /// shmproc::RawValue::<f64>::open(&name)?.store(2.5);
    /// assert_eq!(v.load(), 2.5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no named `RawValue`; the nearest is `SharedMemory(name, create=True)`.
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str, value: T) -> Result<Self> {
        check_width::<T>();
        Ok(RawValue { shared: Home::create(name, |c: &RawCell<T>| Self::init(c, value))? })
    }

    /// Opens a named value made by [`create`](RawValue::create) with the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rawvalue-open-{}", std::process::id());
    /// let _v = shmproc::RawValue::create(&name, 1u32)?;
    /// assert!(matches!(shmproc::RawValue::<u16>::open(&name), Err(shmproc::Error::LayoutMismatch { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `SharedMemory(name)`, with the type checked.
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`](crate::Error::LayoutMismatch)
    /// for a `T` of another size, or another kind of object.
    pub fn open(name: &str) -> Result<Self> {
        check_width::<T>();
        Ok(RawValue { shared: Home::open(name)? })
    }

    /// The value (one atomic load).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::RawValue::new(7u8)?.load(), 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `v.value`.
    #[doc(alias = "value")]
    #[inline]
    pub fn load(&self) -> T {
        with_atom!(T, A => load::<A, T>(self.shared.atom::<A>()))
    }

    /// Replaces the value (one atomic store).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::RawValue::new(0u16)?;
    /// v.store(9);
    /// assert_eq!(v.load(), 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `v.value = x`.
    #[doc(alias = "value")]
    #[inline]
    pub fn store(&self, value: T) {
        with_atom!(T, A => store::<A, T>(self.shared.atom::<A>(), value))
    }

    /// The segment holding the value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::RawValue::new(0u8)?.segment().name().is_none());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn segment(&self) -> &Segment {
        self.shared.segment()
    }
}

impl<T: RawInt> RawValue<T> {
    /// Adds `delta` (wrapping) in one atomic operation; returns the value
    /// before.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::RawValue::new(250u8)?;
    /// assert_eq!(v.fetch_add(10), 250);
    /// assert_eq!(v.load(), 4); // wrapped
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent (`v.value += 1` on a `RawValue` loses updates).
    #[inline]
    pub fn fetch_add(&self, delta: T) -> T {
        with_atom!(T, A => fetch_add::<A, T>(self.shared.atom::<A>(), delta))
    }
}

impl<T: Pod + Send> RawCell<T> {
    /// The cell as an atomic of `T`'s width (its first bytes).
    #[inline]
    fn atom<A: Atom>(&self) -> &A {
        debug_assert_eq!(core::mem::size_of::<A>(), core::mem::size_of::<T>());
        // SAFETY: A is a std atomic integer of at most 8 bytes, so it fits at the start of the 8-aligned AtomicU64
        // `word` (inside the RawCell that `Home` checked in bounds); every std atomic integer is valid for any bits
        // and interior-mutable, and all accesses to the word are atomic; borrows `self`.
        unsafe { &*(&self.word as *const AtomicU64).cast::<A>() }
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for RawValue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shared.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for RawValue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        check_width::<T>();
        Ok(RawValue { shared: Home::deserialize(d)? })
    }
}

/// A fixed-length array of `T` (1, 2, 4 or 8 bytes each) in shared memory,
/// without a lock: every element access is one atomic load or store
/// (Python's `multiprocessing.RawArray`).
///
/// Each element never tears; a bulk copy is element by element, so it may
/// mix elements written before and after a concurrent store (use
/// [`Array`](crate::Array) and its lock for consistent snapshots). A `T`
/// of another size does not compile:
///
/// ```compile_fail
/// let a = shmproc::RawArray::<[u8; 16]>::new(4); // error: 1, 2, 4 or 8 bytes
/// ```
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::RawArray;
///
/// fn fill((a, v): (RawArray<f32>, f32)) {
///     for i in 0..a.len() {
///         a.store(i, v).expect("in range");
///     }
/// }
///
/// let a = RawArray::<f32>::new(4)?;
/// shmproc::Process::spawn(fill, (a.clone(), 0.5))?.join()?;
/// assert_eq!(a.to_vec(), [0.5; 4]);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `RawArray('f', 4)`; `a[i]` is [`load`](RawArray::load) and
/// [`store`](RawArray::store), `a[:]` is [`to_vec`](RawArray::to_vec) and
/// [`copy_from_slice`](RawArray::copy_from_slice). An index out of range is
/// an `Err`, not an `IndexError` exception.
pub struct RawArray<T: Pod + Send> {
    a: ArraySeg<T>,
}

impl<T: Pod + Send> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray { a: self.a.clone() }
    }
}

impl<T: Pod + Send> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.a.fmt(f)
    }
}

impl<T: Pod + Send> RawArray<T> {
    fn wrap(a: ArraySeg<T>) -> Self {
        check_width::<T>();
        RawArray { a }
    }

    /// The elements as atomics of `T`'s width.
    #[inline]
    fn atoms<A: Atom>(&self) -> &[A] {
        self.a.seg.slice_in::<A>(self.a.data_offset(), self.a.len).expect("invariant: checked in ArraySeg::wrap")
    }

    /// An anonymous array of `len` zeroes, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::<u64>::new(3)?;
    /// assert_eq!(a.to_vec(), [0, 0, 0]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `RawArray('Q', 3)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if the size
    /// overflows; as for [`Segment::anonymous`].
    pub fn new(len: usize) -> Result<Self> {
        check_width::<T>();
        Ok(Self::wrap(ArraySeg::make(Flavor::Raw, None, len, &[])?))
    }

    /// An anonymous array holding a copy of `xs`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::from_slice(&[1i16, -2])?;
    /// assert_eq!(a.load(1)?, -2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `RawArray('h', [1, -2])`.
    ///
    /// # Errors
    /// As for [`new`](RawArray::new).
    pub fn from_slice(xs: &[T]) -> Result<Self> {
        check_width::<T>();
        Ok(Self::wrap(ArraySeg::make(Flavor::Raw, None, xs.len(), xs)?))
    }

    /// A named array of `len` zeroes that unrelated processes can
    /// [`open`](RawArray::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rawarray-{}", std::process::id());
    /// let a = shmproc::RawArray::<u8>::create(&name, 4)?;
    /// shmproc::RawArray::<u8>::open(&name)?.store(3, 1)?;
    /// assert_eq!(a.to_vec(), [0, 0, 0, 1]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no named `RawArray`; the nearest is `SharedMemory(name, create=True)`.
    ///
    /// # Errors
    /// As for [`new`](RawArray::new) and [`Segment::create`].
    pub fn create(name: &str, len: usize) -> Result<Self> {
        check_width::<T>();
        Ok(Self::wrap(ArraySeg::make(Flavor::Raw, Some(name), len, &[])?))
    }

    /// Opens a named array made by [`create`](RawArray::create) with the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rawarray-open-{}", std::process::id());
    /// let _a = shmproc::RawArray::<u8>::create(&name, 4)?;
    /// assert!(matches!(shmproc::Array::<u8>::open(&name), Err(shmproc::Error::LayoutMismatch { .. })));
    /// assert_eq!(shmproc::RawArray::<u8>::open(&name)?.len(), 4);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `SharedMemory(name)`, with the type and length checked.
    ///
    /// # Errors
    /// As for [`Segment::open`];
    /// [`Error::LayoutMismatch`](crate::Error::LayoutMismatch) for another
    /// `T` or kind of object (a locked [`Array`](crate::Array) included);
    /// [`Error::Corrupt`](crate::Error::Corrupt) if the stored length does
    /// not fit the segment.
    pub fn open(name: &str) -> Result<Self> {
        check_width::<T>();
        Ok(Self::wrap(ArraySeg::open(Flavor::Raw, name)?))
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::RawArray::<u8>::new(2)?.len(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `len(a)`.
    pub fn len(&self) -> usize {
        self.a.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::RawArray::<u8>::new(0)?.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `len(a) == 0`.
    pub fn is_empty(&self) -> bool {
        self.a.len == 0
    }

    /// Element `i` (one atomic load).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::from_slice(&[4u32, 5])?;
    /// assert_eq!(a.load(0)?, 4);
    /// assert!(a.load(2).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `i >= len()`.
    #[inline]
    pub fn load(&self, i: usize) -> Result<T> {
        self.a.check_index(i)?;
        Ok(with_atom!(T, A => load::<A, T>(&self.atoms::<A>()[i])))
    }

    /// Replaces element `i` (one atomic store).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::<i8>::new(1)?;
    /// a.store(0, -5)?;
    /// assert_eq!(a.load(0)?, -5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[i] = x`.
    ///
    /// # Errors
    /// As for [`load`](RawArray::load).
    #[inline]
    pub fn store(&self, i: usize, value: T) -> Result<()> {
        self.a.check_index(i)?;
        with_atom!(T, A => store::<A, T>(&self.atoms::<A>()[i], value));
        Ok(())
    }

    /// A copy of every element (element by element, each atomic).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::RawArray::from_slice(&[1u8, 2])?.to_vec(), [1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[:]`.
    pub fn to_vec(&self) -> Vec<T> {
        with_atom!(T, A => self.atoms::<A>().iter().map(load::<A, T>).collect())
    }

    /// Copies every element into `out` (element by element, each atomic).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::from_slice(&[1u8, 2])?;
    /// let mut out = [0u8; 2];
    /// a.copy_to_slice(&mut out)?;
    /// assert_eq!(out, [1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `out[:] = a[:]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if
    /// `out.len() != len()`.
    pub fn copy_to_slice(&self, out: &mut [T]) -> Result<()> {
        self.a.check_len(out.len())?;
        with_atom!(T, A => {
            for (o, a) in out.iter_mut().zip(self.atoms::<A>()) {
                *o = load::<A, T>(a);
            }
        });
        Ok(())
    }

    /// Replaces every element with those of `xs` (element by element, each
    /// atomic).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::<u16>::new(2)?;
    /// a.copy_from_slice(&[3, 4])?;
    /// assert_eq!(a.to_vec(), [3, 4]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[:] = xs`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if
    /// `xs.len() != len()`.
    pub fn copy_from_slice(&self, xs: &[T]) -> Result<()> {
        self.a.check_len(xs.len())?;
        with_atom!(T, A => {
            for (x, a) in xs.iter().zip(self.atoms::<A>()) {
                store::<A, T>(a, *x);
            }
        });
        Ok(())
    }

    /// The segment holding the array.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::RawArray::<u8>::new(1)?.segment().name().is_none());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn segment(&self) -> &Segment {
        &self.a.seg
    }
}

impl<T: RawInt> RawArray<T> {
    /// Adds `delta` to element `i` (wrapping) in one atomic operation;
    /// returns the element before.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::RawArray::<i64>::new(2)?;
    /// assert_eq!(a.fetch_add(1, -3)?, 0);
    /// assert_eq!(a.to_vec(), [0, -3]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent (`a[i] += 1` on a `RawArray` loses updates).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if `i >= len()`.
    #[inline]
    pub fn fetch_add(&self, i: usize, delta: T) -> Result<T> {
        self.a.check_index(i)?;
        Ok(with_atom!(T, A => fetch_add::<A, T>(&self.atoms::<A>()[i], delta)))
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for RawArray<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.a.serialize(s, Flavor::Raw)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for RawArray<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Self::wrap(ArraySeg::deserialize(Flavor::Raw, d)?))
    }
}
