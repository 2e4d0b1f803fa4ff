//! The one codec for values that are not `ShmSafe`: postcard (compact,
//! maintained, serde-based). Chosen here and nowhere else.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The codec's error: the message a handle or descriptor gave (postcard
/// keeps none of a custom error), else postcard's.
fn codec_error(e: postcard::Error) -> Error {
    let custom = matches!(e, postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom);
    let message = custom.then(crate::shm::handoff::take_message).flatten().unwrap_or_else(|| e.to_string());
    Error::Codec { message }
}

/// Encodes `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    append(value, &mut buf)?;
    Ok(buf)
}

/// Encodes `value` into `buf` (cleared first), reusing its allocation.
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, mut buf: Vec<u8>) -> Result<Vec<u8>> {
    buf.clear();
    append(value, &mut buf)?;
    Ok(buf)
}

#[cfg(any(feature = "pool", feature = "manager"))]
/// Appends the encoding of `value` to `buf`; on failure `buf` is left as
/// it was.
pub(crate) fn encode_append<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    let start = buf.len();
    append(value, buf).inspect_err(|_| buf.truncate(start))
}

/// Appends the encoding of `value` to `buf` (what is written stays on
/// failure).
fn append<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    postcard::serialize_with_flavor(value, Append(buf)).map_err(codec_error)
}

/// The encoder's output: the end of a `Vec`. Postcard hands it each field
/// as a short slice (a varint, a scalar); those are pushed byte by byte,
/// where `extend_from_slice` (what `to_io` and `to_extend` come down to)
/// calls `memcpy` for each, which took 15 % of a pool `map`'s time.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= 16 {
            self.0.reserve(data.len());
            for &b in data {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a `T` from exactly `bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(codec_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let v = (1u32, String::from("x"), vec![1.5f64]);
        let b = encode(&v).expect("encode");
        assert_eq!(decode::<(u32, String, Vec<f64>)>(&b).expect("decode"), v);
        assert!(decode::<(u32, String)>(&[0xff, 0xff, 0xff]).is_err());
        #[cfg(any(feature = "pool", feature = "manager"))]
        {
            let mut buf = vec![9u8];
            encode_append(&v, &mut buf).expect("append");
            assert_eq!(decode::<(u32, String, Vec<f64>)>(&buf[1..]).expect("decode"), v);
        }
    }
}
