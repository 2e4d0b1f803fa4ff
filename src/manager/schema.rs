//! Type fingerprints from the serde data model, the same in every build of
//! the same source (unlike `std::any::type_name`, whose text may change
//! between compiler versions).
//!
//! [`fingerprint`] walks `T`'s `Deserialize` impl with a [`Tracer`]: a
//! deserializer that hands out fixed values and, as it goes, mixes what the
//! impl asks for into a hash: primitive kinds, struct, field, enum and
//! variant names, tuple lengths, sequences and maps (their element types
//! once, through one element), options (through `Some`). That is the shape
//! the codec (postcard) encodes, so two types with equal fingerprints
//! decode each other's bytes (or fail with a `Codec` error, never silently
//! mix unrelated shapes the tracer can tell apart).
//!
//! Limits: an enum's variants are told apart by name, but only the first
//! variant's contents are traced; a type that needs a self-describing
//! format (`deserialize_any`) or refuses the fixed values stops the trace,
//! and then what was traced so far plus an "opaque" mark is the
//! fingerprint. A manager proxy inside `T` adds its own fingerprint and
//! stops the trace the same way (it cannot be made up from fixed values).

use std::cell::Cell;

use serde::Deserializer;
use serde::de::value::{Error as TraceError, U32Deserializer};
use serde::de::{
    DeserializeOwned, DeserializeSeed, EnumAccess, Error as _, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use crate::shm::layout::{layout_hash, layout_hash_mix};

/// How deep the tracer follows optional or repeated parts (recursive types
/// end there).
const MAX_DEPTH: u32 = 8;

thread_local! {
    /// The hash of the trace under way on this thread, if any.
    static TRACE: Cell<Option<u64>> = const { Cell::new(None) };
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

/// The fingerprint of `T`'s shape, mixed with `kind` (what holds it).
pub(crate) fn fingerprint<T: DeserializeOwned>(kind: &str) -> u64 {
    let Some(_nested) = Nested::enter() else {
        return layout_hash_mix(layout_hash(kind, 0, 0), layout_hash("recursive", 0, 0));
    };
    let outer = TRACE.with(|t| t.replace(Some(layout_hash(kind, 0, 0))));
    let traced = T::deserialize(Tracer { depth: 0 }).map(drop);
    let h = TRACE.with(|t| t.replace(outer)).unwrap_or(0);
    match traced {
        Ok(()) => h,
        Err(_) => layout_hash_mix(h, layout_hash("opaque", 0, 0)),
    }
}

/// Whether a trace is under way on this thread (a proxy's `Deserialize`
/// then adds its fingerprint with [`note_value`] and stops).
pub(crate) fn tracing() -> bool {
    TRACE.with(|t| t.get().is_some())
}

/// Mixes `v` into the trace under way, if any.
pub(crate) fn note_value(v: u64) {
    TRACE.with(|t| {
        if let Some(h) = t.get() {
            t.set(Some(layout_hash_mix(h, v)));
        }
    });
}

fn note(tag: &str) {
    note_value(layout_hash(tag, 0, 0));
}

/// The deserializer that records what it is asked for.
#[derive(Debug, Clone, Copy)]
struct Tracer {
    depth: u32,
}

impl Tracer {
    fn deeper(self) -> Result<Tracer, TraceError> {
        if self.depth >= MAX_DEPTH {
            return Err(TraceError::custom("too deep"));
        }
        Ok(Tracer { depth: self.depth + 1 })
    }

    /// One element for a sequence or map, none once deep enough.
    fn one(self) -> usize {
        usize::from(self.depth < MAX_DEPTH)
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

    traced! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_i128 => visit_i128(0),
        // Unsigned values are the largest: an index made up by the trace
        // points at nothing.
        deserialize_u8 => visit_u8(u8::MAX),
        deserialize_u16 => visit_u16(u16::MAX),
        deserialize_u32 => visit_u32(u32::MAX),
        deserialize_u64 => visit_u64(u64::MAX),
        deserialize_u128 => visit_u128(u128::MAX),
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
        v.visit_enum(self)
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

impl<'de> EnumAccess<'de> for Tracer {
    type Error = TraceError;
    type Variant = Tracer;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Tracer), TraceError> {
        Ok((seed.deserialize(U32Deserializer::<TraceError>::new(0))?, self))
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
    use std::collections::BTreeMap;

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
}
