//! Type fingerprints from the serde data model, the same in every build of
//! the same source (unlike `std::any::type_name`, whose text may change
//! between compiler versions). Every manager proxy's type check uses them.
//!
//! [`fingerprint`] walks `T`'s `Deserialize` impl with a [`Tracer`]: a
//! deserializer that hands out small fixed values (`0`/`1`, `false`, `'a'`,
//! empty strings: what std types accept) and, as it goes, mixes what the
//! impl asks for into a hash: primitive kinds, struct, field, enum and
//! variant names, tuple lengths, sequences and maps (their element types
//! once, through one element), options (through `Some`). That is the shape
//! the codec (postcard) encodes, so two types with equal fingerprints
//! decode each other's bytes (or fail with a `Codec` error, never silently
//! mix unrelated shapes the tracer can tell apart).
//!
//! Enums: one walk takes one variant of each enum it meets, so the tracer
//! walks the impl again until every variant of every enum it met has been
//! taken once (a variant not yet taken first; else one under which the
//! last walk found a variant not yet taken, so nested enums are reached;
//! at most [`MAX_RUNS`] walks, then a fixed "variant limit" mark). The
//! walks' traces are chained: the fingerprint covers every variant's
//! contents.
//!
//! Depth: past [`MAX_DEPTH`] nested parts a fixed "depth limit" mark is
//! mixed in (options are `None` there, sequences and maps empty, and
//! anything else ends the walk), so a deeper type differs from one cut
//! there and recursive types end.
//!
//! Limits: a type that needs a self-describing format (`deserialize_any`)
//! or refuses the fixed values ends the walk, and then what was traced so
//! far plus an "opaque" mark is that walk's part. A manager proxy inside
//! `T` adds its own fingerprint and ends the walk the same way: a proxy
//! cannot be made up from fixed values (it holds a live manager's accept
//! queue), so fields after a proxy do not count. Made-up descriptor indices
//! and segment names find nothing: a trace runs with an empty descriptor
//! list (see [`crate::shm::handoff::with_fds`]), whatever decoding is under
//! way on the thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::Deserializer;
use serde::de::value::{Error as TraceError, U32Deserializer};
use serde::de::{
    DeserializeOwned, DeserializeSeed, EnumAccess, Error as _, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use crate::shm::handoff;
use crate::shm::layout::{layout_hash, layout_hash_mix};

/// How deep the tracer follows nested parts (recursive types end there).
const MAX_DEPTH: u32 = 12;

/// How many walks of one type's impl a fingerprint takes at most (one per
/// enum variant it has to reach).
const MAX_RUNS: u32 = 64;

/// What one enum's variants saw in the walks so far.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// A walk took this variant.
    taken: bool,
    /// The last walk that took it found a variant not taken before inside.
    fresh_inside: bool,
}

/// A fingerprint under way on this thread.
#[derive(Debug, Default)]
struct Trace {
    /// The hash so far.
    hash: u64,
    /// How many variants the current walk took that no walk took before.
    fresh: u32,
    /// Per enum (by its name and variant names): its variants.
    enums: HashMap<u64, Vec<Seen>>,
}

thread_local! {
    /// The trace under way on this thread, if any.
    static TRACE: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// How many fingerprints may be under way inside one another on a thread
/// (a proxy inside a traced type fingerprints its own type); deeper, a
/// fixed "recursive" mark stands for the rest, so a type that holds a
/// proxy of itself ends instead of recursing until the stack overflows.
const MAX_NESTED: u32 = 8;

thread_local! {
    /// How many fingerprints are under way on this thread.
    static NESTED: Cell<u32> = const { Cell::new(0) };
}

/// Counts one fingerprint under way, until dropped (also by a panic).
struct Nested;

impl Nested {
    fn enter() -> Option<Nested> {
        NESTED.with(|n| {
            let depth = n.get();
            (depth < MAX_NESTED).then(|| {
                n.set(depth + 1);
                Nested
            })
        })
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTED.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Puts back the trace that was under way before a fingerprint started
/// (also when the traced impl panics).
struct Outer(Option<Trace>);

impl Drop for Outer {
    fn drop(&mut self) {
        TRACE.with(|t| t.replace(self.0.take()));
    }
}

/// The fingerprint of `T`'s shape, mixed with `kind` (what holds it).
pub(crate) fn fingerprint<T: DeserializeOwned>(kind: &str) -> u64 {
    traced::<T>(kind).0
}

/// The fingerprint of `T`'s shape, and whether every walk went to its end
/// (no "opaque" mark).
fn traced<T: DeserializeOwned>(kind: &str) -> (u64, bool) {
    let Some(_nested) = Nested::enter() else {
        return (layout_hash_mix(layout_hash(kind, 0, 0), layout_hash("recursive", 0, 0)), false);
    };
    let start = Trace { hash: layout_hash(kind, 0, 0), ..Trace::default() };
    let _outer = Outer(TRACE.with(|t| t.replace(Some(start))));
    let h = handoff::with_fds(Vec::new(), walks::<T>);
    // A message a traced impl left for the codec names no real failure.
    drop(handoff::take_message());
    h
}

/// Walks `T`'s impl until a walk takes no variant not taken before; the
/// hash, and whether every walk went to its end.
fn walks<T: DeserializeOwned>() -> (u64, bool) {
    let mut h = with_trace(|t| t.hash).unwrap_or(0);
    let mut complete = true;
    for run in 0..MAX_RUNS {
        with_trace(|t| {
            t.hash = h;
            t.fresh = 0;
        });
        let traced = T::deserialize(Tracer { depth: 0 }).map(drop);
        let (hash, fresh) = with_trace(|t| (t.hash, t.fresh)).unwrap_or((0, 0));
        if run > 0 && fresh == 0 {
            // Nothing this walk saw is new: its trace adds nothing.
            return (h, complete);
        }
        h = match traced {
            Ok(()) => hash,
            Err(_) => {
                complete = false;
                layout_hash_mix(hash, layout_hash("opaque", 0, 0))
            }
        };
        if fresh == 0 {
            return (h, complete);
        }
    }
    (layout_hash_mix(h, layout_hash("variant limit", 0, 0)), false)
}

fn with_trace<R>(f: impl FnOnce(&mut Trace) -> R) -> Option<R> {
    TRACE.with(|t| t.borrow_mut().as_mut().map(f))
}

/// Whether a trace is under way on this thread (a proxy's `Deserialize`
/// then adds its fingerprint with [`note_value`] and stops).
pub(crate) fn tracing() -> bool {
    TRACE.with(|t| t.borrow().is_some())
}

/// Mixes `v` into the trace under way, if any.
pub(crate) fn note_value(v: u64) {
    with_trace(|t| t.hash = layout_hash_mix(t.hash, v));
}

fn note(tag: &str) {
    note_value(layout_hash(tag, 0, 0));
}

/// Which variant of the enum `key` (with `count` variants) this walk
/// takes: one not taken yet, else one under which the last walk found
/// something new, else the first.
fn choose(key: u64, count: usize) -> usize {
    with_trace(|t| {
        let seen = t.enums.entry(key).or_insert_with(|| vec![Seen::default(); count]);
        let pick = seen.iter().position(|s| !s.taken).or_else(|| seen.iter().position(|s| s.fresh_inside)).unwrap_or(0);
        if !seen[pick].taken {
            seen[pick].taken = true;
            t.fresh += 1;
        }
        pick
    })
    .unwrap_or(0)
}

/// Records whether the walk found something new inside variant `pick` of
/// enum `key`.
fn taken(key: u64, pick: usize, fresh_inside: bool) {
    with_trace(|t| {
        if let Some(s) = t.enums.get_mut(&key).and_then(|v| v.get_mut(pick)) {
            s.fresh_inside = fresh_inside;
        }
    });
}

fn fresh() -> u32 {
    with_trace(|t| t.fresh).unwrap_or(0)
}

/// The deserializer that records what it is asked for.
#[derive(Debug, Clone, Copy)]
struct Tracer {
    depth: u32,
}

impl Tracer {
    /// One level deeper; past the limit a "depth limit" mark and an error.
    fn deeper(self) -> Result<Tracer, TraceError> {
        if self.depth >= MAX_DEPTH {
            note("depth limit");
            return Err(TraceError::custom("too deep"));
        }
        Ok(Tracer { depth: self.depth + 1 })
    }

    /// One element for a sequence or map; none (and a "depth limit" mark)
    /// past the limit.
    fn one(self) -> usize {
        if self.depth >= MAX_DEPTH {
            note("depth limit");
            return 0;
        }
        1
    }
}

macro_rules! traced {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
            note(stringify!($method));
            v.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Tracer {
    type Error = TraceError;

    // Small values, which std types accept (a `Duration`'s nanoseconds,
    // a `NonZero*`); made-up descriptor indices find nothing (see the
    // module docs).
    traced! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(1),
        deserialize_i16 => visit_i16(1),
        deserialize_i32 => visit_i32(1),
        deserialize_i64 => visit_i64(1),
        deserialize_i128 => visit_i128(1),
        deserialize_u8 => visit_u8(1),
        deserialize_u16 => visit_u16(1),
        deserialize_u32 => visit_u32(1),
        deserialize_u64 => visit_u64(1),
        deserialize_u128 => visit_u128(1),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_string(String::new()),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_byte_buf(Vec::new()),
        deserialize_unit => visit_unit(),
        deserialize_ignored_any => visit_unit(),
        deserialize_identifier => visit_u64(0),
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        note("any");
        Err(TraceError::custom("a self-describing type"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        note("option");
        if self.one() == 1 { v.visit_some(self.deeper()?) } else { v.visit_none() }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, TraceError> {
        note("unit_struct");
        note(name);
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, TraceError> {
        note("newtype_struct");
        note(name);
        v.visit_newtype_struct(self.deeper()?)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        note("seq");
        v.visit_seq(Elements { left: self.one(), at: self })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, TraceError> {
        note("tuple");
        note_value(len as u64);
        v.visit_seq(Elements { left: len, at: self })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, TraceError> {
        note("tuple_struct");
        note(name);
        note_value(len as u64);
        v.visit_seq(Elements { left: len, at: self })
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TraceError> {
        note("map");
        v.visit_map(Elements { left: self.one(), at: self })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TraceError> {
        note("struct");
        note(name);
        fields.iter().for_each(|f| note(f));
        v.visit_seq(Elements { left: fields.len(), at: self })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TraceError> {
        note("enum");
        note(name);
        variants.iter().for_each(|f| note(f));
        if variants.is_empty() {
            return Err(TraceError::custom("an enum without variants"));
        }
        let key =
            variants.iter().fold(layout_hash(name, variants.len(), 0), |h, f| layout_hash_mix(h, layout_hash(f, 0, 0)));
        let pick = choose(key, variants.len());
        note_value(pick as u64);
        let before = fresh();
        let out = v.visit_enum(Variant { at: self, index: u32::try_from(pick).unwrap_or(u32::MAX) });
        taken(key, pick, fresh() > before);
        out
    }

    fn is_human_readable(&self) -> bool {
        // As the codec: some types encode differently for humans.
        false
    }
}

/// The elements of a traced sequence, tuple, struct or map.
struct Elements {
    left: usize,
    at: Tracer,
}

impl<'de> SeqAccess<'de> for Elements {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.at.deeper()?).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> MapAccess<'de> for Elements {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        self.next_element_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TraceError> {
        seed.deserialize(self.at.deeper()?)
    }
}

/// The variant a walk takes of a traced enum.
struct Variant {
    at: Tracer,
    index: u32,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = TraceError;
    type Variant = Tracer;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Tracer), TraceError> {
        Ok((seed.deserialize(U32Deserializer::<TraceError>::new(self.index))?, self.at))
    }
}

impl<'de> VariantAccess<'de> for Tracer {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, TraceError> {
        seed.deserialize(self.deeper()?)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, TraceError> {
        note_value(len as u64);
        v.visit_seq(Elements { left: len, at: self })
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], v: V) -> Result<V::Value, TraceError> {
        fields.iter().for_each(|f| note(f));
        v.visit_seq(Elements { left: fields.len(), at: self })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::time::{Duration, SystemTime};

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Other {
        x: i32,
        y: i64,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Tree {
        Leaf(u8),
        Node(Vec<Tree>),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum List {
        Cons(u8, Box<List>),
        Nil,
    }

    /// Two enums that differ only in a later variant's contents.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Dot,
        Circle { r: f32 },
        Poly(Vec<(i32, i32)>),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(rename = "Shape")]
    enum Shape2 {
        Dot,
        Circle { r: f32 },
        Poly(Vec<(i64, i32)>),
    }

    /// An enum reached only through another enum's second variant: its
    /// third variant must still count.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Outer<I> {
        Empty,
        Holds(I),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(rename = "Inner")]
    enum Inner {
        A,
        B,
        C(u8),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(rename = "Inner")]
    enum Inner2 {
        A,
        B,
        C(u16),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Everything {
        took: Duration,
        at: SystemTime,
        name: String,
        tags: Vec<String>,
        counts: HashMap<String, u64>,
        sorted: BTreeMap<u32, Vec<u8>>,
        maybe: Option<Point>,
        pair: (u8, char, bool),
        shape: Shape,
        nonzero: std::num::NonZeroU32,
    }

    /// `N` levels of nesting around a `u8`.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wrap<T>(T, u8);

    #[test]
    fn shapes_are_told_apart_and_stable() {
        let fp = fingerprint::<Point>("k");
        assert_eq!(fp, fingerprint::<Point>("k"));
        assert_ne!(fp, fingerprint::<Point>("other kind"));
        assert_ne!(fp, fingerprint::<Other>("k"));
        assert_ne!(fingerprint::<u32>("k"), fingerprint::<i32>("k"));
        assert_ne!(fingerprint::<Vec<u8>>("k"), fingerprint::<Vec<u16>>("k"));
        assert_ne!(fingerprint::<Option<String>>("k"), fingerprint::<String>("k"));
        assert_ne!(fingerprint::<(u8, u8)>("k"), fingerprint::<(u8, u8, u8)>("k"));
        assert_ne!(fingerprint::<BTreeMap<String, u8>>("k"), fingerprint::<BTreeMap<u8, String>>("k"));
        // Recursive types end (the depth limit), opaque ones too.
        assert_eq!(fingerprint::<Tree>("k"), fingerprint::<Tree>("k"));
        assert_eq!(fingerprint::<List>("k"), fingerprint::<List>("k"));
        assert!(!tracing(), "the trace ends with the call");
    }

    #[test]
    fn std_types_trace_to_the_end() {
        fn complete<T: DeserializeOwned>() -> bool {
            traced::<T>("k").1
        }
        assert!(complete::<Duration>(), "Duration");
        assert!(complete::<SystemTime>(), "SystemTime");
        assert!(complete::<String>(), "String");
        assert!(complete::<Vec<u32>>(), "Vec");
        assert!(complete::<HashMap<String, u64>>(), "HashMap");
        assert!(complete::<BTreeMap<u8, String>>(), "BTreeMap");
        assert!(complete::<Option<u8>>(), "Option");
        assert!(complete::<(u8, i64, f32)>(), "tuple");
        assert!(complete::<char>(), "char");
        assert!(complete::<bool>(), "bool");
        assert!(complete::<std::num::NonZeroU64>(), "NonZeroU64");
        assert!(complete::<Shape>(), "an enum with data");
        assert!(complete::<Outer<Inner>>(), "nested enums");
        assert!(complete::<Everything>(), "nested structs");
        assert!(complete::<Tree>(), "a recursive enum with a sequence");
        assert!(!tracing());
    }

    #[test]
    fn every_variant_counts() {
        assert_eq!(fingerprint::<Shape>("k"), fingerprint::<Shape>("k"));
        assert_ne!(fingerprint::<Shape>("k"), fingerprint::<Shape2>("k"), "the last variant's contents");
        assert_ne!(fingerprint::<Outer<Inner>>("k"), fingerprint::<Outer<Inner2>>("k"), "a nested enum's last variant");
        assert_ne!(fingerprint::<Option<Shape>>("k"), fingerprint::<Option<Shape2>>("k"));
        assert_ne!(fingerprint::<Everything>("k"), fingerprint::<Point>("k"));
    }

    #[test]
    fn the_depth_limit_is_marked() {
        type D4<T> = Wrap<Wrap<Wrap<Wrap<T>>>>;
        type D12<T> = D4<D4<D4<T>>>;
        assert!(traced::<D4<D4<u8>>>("k").1, "within the limit");
        assert!(traced::<D12<u8>>("k").1, "at the limit");
        // Cut: marked (and not complete); types that differ only past the
        // cut are the same there.
        assert!(!traced::<Wrap<D12<u8>>>("k").1, "past the limit");
        assert_ne!(fingerprint::<D12<u8>>("k"), fingerprint::<Wrap<D12<u8>>>("k"));
        assert_eq!(fingerprint::<Wrap<D12<u8>>>("k"), fingerprint::<Wrap<D12<u16>>>("k"));
        // A sequence past the limit ends empty, with the mark: its element
        // type does not count there, but the cut does.
        type V4<T> = Vec<Vec<Vec<Vec<T>>>>;
        type V13<T> = V4<V4<V4<Vec<T>>>>;
        assert_ne!(fingerprint::<V13<u8>>("k"), fingerprint::<V4<V4<V4<u8>>>>("k"));
        assert!(traced::<V13<u8>>("k").1, "a cut sequence still ends");
    }

    #[test]
    fn a_trace_takes_no_descriptor_of_a_decoding_under_way() {
        type Pair = (crate::Fd<std::fs::File>, crate::Fd<std::fs::File>);
        let open = || std::fs::File::open("/dev/null").map(crate::Fd::new).unwrap();
        let (bytes, fds, _undo) = handoff::collecting(|| crate::codec::encode(&(open(), open())));
        let bytes = bytes.unwrap();
        assert_eq!(fds.len(), 2);
        // The trace makes up descriptor index 1 (and 0 for variant
        // indices): the real ones stay for the real decoding.
        let fp = handoff::with_fds(fds, || {
            let fp = fingerprint::<Pair>("k");
            assert!(crate::codec::decode::<Pair>(&bytes).is_ok(), "both descriptors are still there");
            fp
        });
        assert_eq!(fp, fingerprint::<Pair>("k"));
    }
}
