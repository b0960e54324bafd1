//! Argument types: Rust values to and from AMP values, byte for byte as Twisted writes them
//! (AM-10).
//!
//! | Twisted | Rust |
//! |---|---|
//! | `Integer` | `i64` (also `i32`, `u32`, `u64`, `i128`) |
//! | `String` | [`Bytes`] |
//! | `Unicode` | [`String`] |
//! | `Boolean` | `bool` (`True` / `False`) |
//! | `Float` | `f64` (Python's `repr`: `1.0`, `1e+16`, `nan`, `inf`, `-inf`) |
//! | `Decimal` | [`Decimal`] (its exact text, in Python's canonical spelling) |
//! | `DateTime` | [`DateTime`] (32 characters with microseconds and offset) |
//! | `ListOf(T)` | `Vec<T>` |
//! | `AmpList([...])` | [`AmpList<T>`] of a [`Fields`](super::Fields) record |
//! | `optional=True` | `Option<T>` (left out of the box when `None`) |

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use bytes::{BufMut, Bytes, BytesMut};

use crate::amp::box_codec::{AmpBox, BoxError, MAX_VALUE_LENGTH};
use crate::amp::command::Fields;
use crate::amp::values::{DateTime, Decimal};
use crate::amp::BoxCodec;
use crate::framing::Decoder;

/// A Rust type that is one AMP argument type: how it is written into a box and read back.
pub trait Argument: Sized {
    /// Appends the value's wire form to `out`.
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError>;

    /// Reads a value from its wire form.
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError>;

    /// Puts the value into `amp_box` under `key` (an optional argument that is absent puts
    /// nothing). Values over 65,535 bytes are refused here, before anything is sent.
    fn to_box(&self, key: &'static str, amp_box: &mut AmpBox) -> Result<(), ArgumentError> {
        let mut out = BytesMut::new();
        self.to_wire(&mut out)?;
        insert(amp_box, key, out.freeze())
    }

    /// Reads the value of `key` from `amp_box`; a missing key is an error unless the type is
    /// optional.
    fn from_box(key: &'static str, amp_box: &AmpBox) -> Result<Self, ArgumentError> {
        match amp_box.get(key.as_bytes()) {
            Some(value) => Self::from_wire(value.clone()),
            None => Err(ArgumentError::Missing { key }),
        }
    }
}

fn insert(amp_box: &mut AmpBox, key: &'static str, value: Bytes) -> Result<(), ArgumentError> {
    amp_box.insert(key, value).map_err(|error| match error {
        BoxError::ValueTooLong { len } => ArgumentError::TooLong { key, len },
        _ => ArgumentError::BadKey { key },
    })
}

/// Why a value cannot be written into a box or read out of one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgumentError {
    /// A required key is not in the box.
    Missing {
        /// The argument's name.
        key: &'static str,
    },
    /// The value's wire form is over 65,535 bytes: refused before anything is sent.
    TooLong {
        /// The argument's name.
        key: &'static str,
        /// The wire form's length.
        len: usize,
    },
    /// The argument's name cannot be a key (empty, or over 255 bytes).
    BadKey {
        /// The argument's name.
        key: &'static str,
    },
    /// The bytes are not a value of the type (`Integer` given `abc`, say).
    Invalid {
        /// The type expected, as Twisted names it.
        expected: &'static str,
    },
    /// A value the wire format cannot express (a `ListOf` element over 65,535 bytes).
    Unrepresentable {
        /// The type, as Twisted names it.
        kind: &'static str,
    },
}

impl ArgumentError {
    /// The same error for the argument `key` (an element's error inside a list, say).
    fn for_key(self, key: &'static str) -> Self {
        match self {
            ArgumentError::TooLong { len, .. } => ArgumentError::TooLong { key, len },
            other => other,
        }
    }
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgumentError::Missing { key } => write!(f, "AMP argument {key:?} is missing"),
            ArgumentError::TooLong { key, len } => write!(
                f,
                "AMP argument {key:?} too long: {len} bytes > {MAX_VALUE_LENGTH}"
            ),
            ArgumentError::BadKey { key } => write!(f, "AMP argument name {key:?} is not a key"),
            ArgumentError::Invalid { expected } => write!(f, "not an AMP {expected} value"),
            ArgumentError::Unrepresentable { kind } => {
                write!(f, "value cannot be written as an AMP {kind}")
            }
        }
    }
}

impl core::error::Error for ArgumentError {}

const fn invalid(expected: &'static str) -> ArgumentError {
    ArgumentError::Invalid { expected }
}

/// Writes `Display` output straight into the buffer.
struct Out<'a>(&'a mut BytesMut);

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

macro_rules! integer {
    ($($int:ty),*) => {$(
        impl Argument for $int {
            fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
                let _ = write!(Out(out), "{self}");
                Ok(())
            }
            fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
                parse_integer(&value)
            }
        }
    )*};
}

integer!(i32, i64, i128, u32, u64);

/// Python's `int(bytes)` for the forms that matter: optional surrounding whitespace, an
/// optional sign, ASCII digits with single underscores between them.
fn parse_integer<T: core::str::FromStr>(value: &[u8]) -> Result<T, ArgumentError> {
    let text = core::str::from_utf8(value).map_err(|_| invalid("Integer"))?;
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(invalid("Integer"));
    }
    let plain: String = text.chars().filter(|&c| c != '_' && c != '+').collect();
    plain.parse().map_err(|_| invalid("Integer"))
}

impl Argument for Bytes {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        out.extend_from_slice(self);
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        Ok(value)
    }
    /// No copy: the box holds the same bytes.
    fn to_box(&self, key: &'static str, amp_box: &mut AmpBox) -> Result<(), ArgumentError> {
        insert(amp_box, key, self.clone())
    }
}

impl Argument for String {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        out.extend_from_slice(self.as_bytes());
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        String::from_utf8(value.to_vec()).map_err(|_| invalid("Unicode"))
    }
}

impl Argument for bool {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        out.extend_from_slice(if *self { b"True" } else { b"False" });
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        match value.as_ref() {
            b"True" => Ok(true),
            b"False" => Ok(false),
            _ => Err(invalid("Boolean")),
        }
    }
}

impl Argument for f64 {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        write_python_float(*self, out);
        Ok(())
    }
    /// Python's `float(bytes)`: `nan`, `inf`, `-inf`, `infinity` in any case, surrounding
    /// whitespace, decimal and exponent forms.
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        let text = core::str::from_utf8(&value).map_err(|_| invalid("Float"))?;
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.contains('_') {
            // Python allows single underscores between digits; rare on the wire.
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            if text.contains("__") || text.starts_with('_') || text.ends_with('_') {
                return Err(invalid("Float"));
            }
            return plain.parse().map_err(|_| invalid("Float"));
        }
        text.parse().map_err(|_| invalid("Float"))
    }
}

/// `str(float)` in Python: the shortest digits that read back the same, in fixed notation
/// when the decimal exponent is in -4..16 (with `.0` for whole numbers), otherwise as
/// `d.ddde+XX`.
pub(crate) fn write_python_float(value: f64, out: &mut BytesMut) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: `d[.ddd]e<exp>`.
    let mut sci = String::new();
    let _ = write!(sci, "{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if value.is_sign_negative() {
        out.put_u8(b'-');
    }
    // Python's `repr` switches to scientific when decpt <= -4 or decpt > 16, where
    // decpt = exponent + 1.
    let decpt = exponent + 1;
    if !(-4 < decpt && decpt <= 16) {
        out.extend_from_slice(mantissa.as_bytes());
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(Out(out), "e{sign}{:02}", exponent.unsigned_abs());
        return;
    }
    let n = digits.len() as i32;
    if decpt <= 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..-decpt {
            out.put_u8(b'0');
        }
        out.extend_from_slice(digits.as_bytes());
    } else if decpt >= n {
        out.extend_from_slice(digits.as_bytes());
        for _ in 0..decpt - n {
            out.put_u8(b'0');
        }
        out.extend_from_slice(b".0");
    } else {
        let (whole, fraction) = digits.split_at(decpt as usize);
        out.extend_from_slice(whole.as_bytes());
        out.put_u8(b'.');
        out.extend_from_slice(fraction.as_bytes());
    }
}

impl Argument for Decimal {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        out.extend_from_slice(self.as_str().as_bytes());
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        let text = core::str::from_utf8(&value).map_err(|_| invalid("Decimal"))?;
        Decimal::parse(text).map_err(|_| invalid("Decimal"))
    }
}

impl Argument for DateTime {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        let _ = write!(Out(out), "{self}");
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        DateTime::parse(&value).map_err(|_| invalid("DateTime"))
    }
}

impl<T: Argument> Argument for Option<T> {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        match self {
            Some(value) => value.to_wire(out),
            None => Ok(()),
        }
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        T::from_wire(value).map(Some)
    }
    /// `None` is left out of the box (Twisted's `optional=True`).
    fn to_box(&self, key: &'static str, amp_box: &mut AmpBox) -> Result<(), ArgumentError> {
        match self {
            Some(value) => value.to_box(key, amp_box),
            None => Ok(()),
        }
    }
    fn from_box(key: &'static str, amp_box: &AmpBox) -> Result<Self, ArgumentError> {
        match amp_box.get(key.as_bytes()) {
            Some(value) => T::from_wire(value.clone()).map(Some),
            None => Ok(None),
        }
    }
}

/// `ListOf(T)`: each element's wire form behind a 2-byte big-endian length.
impl<T: Argument> Argument for Vec<T> {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        for element in self {
            let mut one = BytesMut::new();
            element.to_wire(&mut one)?;
            let len = u16::try_from(one.len())
                .map_err(|_| ArgumentError::Unrepresentable { kind: "ListOf" })?;
            out.put_u16(len);
            out.extend_from_slice(&one);
        }
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        let mut elements = Vec::new();
        let mut at = 0;
        while at < value.len() {
            let Some(&[hi, lo]) = value.get(at..at + 2) else {
                return Err(invalid("ListOf"));
            };
            let end = at + 2 + usize::from(u16::from_be_bytes([hi, lo]));
            if end > value.len() {
                return Err(invalid("ListOf"));
            }
            elements.push(T::from_wire(value.slice(at + 2..end))?);
            at = end;
        }
        Ok(elements)
    }
    fn to_box(&self, key: &'static str, amp_box: &mut AmpBox) -> Result<(), ArgumentError> {
        let mut out = BytesMut::new();
        self.to_wire(&mut out).map_err(|e| e.for_key(key))?;
        insert(amp_box, key, out.freeze())
    }
}

/// `AmpList([...])`: a list of records, each a whole box (keys sorted, terminator included).
///
/// ```
/// use loomwork::amp::{fields, AmpList, Argument};
/// use loomwork::bytes::BytesMut;
///
/// fields! {
///     /// One row.
///     pub struct Row { pub a: i64 }
/// }
/// let mut out = BytesMut::new();
/// AmpList(vec![Row { a: 7 }]).to_wire(&mut out).unwrap();
/// assert_eq!(out, &b"\x00\x01a\x00\x017\x00\x00"[..]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AmpList<T>(pub Vec<T>);

impl<T: Fields> Argument for AmpList<T> {
    fn to_wire(&self, out: &mut BytesMut) -> Result<(), ArgumentError> {
        for record in &self.0 {
            let mut amp_box = AmpBox::new();
            record.to_box(&mut amp_box)?;
            out.extend_from_slice(&amp_box.to_wire());
        }
        Ok(())
    }
    fn from_wire(value: Bytes) -> Result<Self, ArgumentError> {
        let mut codec = BoxCodec::new().with_max_length(usize::MAX);
        let mut buf = BytesMut::from(value.as_ref());
        let mut records = Vec::new();
        while !buf.is_empty() {
            let pairs = match codec.decode(&mut buf) {
                Ok(Some(pairs)) => pairs,
                _ => return Err(invalid("AmpList")),
            };
            let amp_box = AmpBox::parse(pairs).map_err(|_| invalid("AmpList"))?;
            records.push(T::from_box(&amp_box)?);
        }
        Ok(AmpList(records))
    }
    fn to_box(&self, key: &'static str, amp_box: &mut AmpBox) -> Result<(), ArgumentError> {
        let mut out = BytesMut::new();
        self.to_wire(&mut out).map_err(|e| e.for_key(key))?;
        insert(amp_box, key, out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn float(value: f64) -> String {
        let mut out = BytesMut::new();
        write_python_float(value, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn floats_are_spelled_as_python_repr_spells_them() {
        // Each right-hand side is `str(float(x))` in CPython 3.11.
        let cases = [
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (123.456, "123.456"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, python) in cases {
            assert_eq!(float(value), python, "{value:?}");
        }
    }

    #[test]
    fn floats_read_python_spellings() {
        for (text, value) in [("inf", f64::INFINITY), ("-inf", f64::NEG_INFINITY)] {
            assert_eq!(f64::from_wire(Bytes::from(text)).unwrap(), value);
        }
        assert!(f64::from_wire(Bytes::from("nan")).unwrap().is_nan());
        assert_eq!(f64::from_wire(Bytes::from(" 1_0.5 ")).unwrap(), 10.5);
        assert!(f64::from_wire(Bytes::from("1..0")).is_err());
    }

    #[test]
    fn integers_read_what_python_int_reads_and_nothing_else() {
        assert_eq!(i64::from_wire(Bytes::from("-42")).unwrap(), -42);
        assert_eq!(i64::from_wire(Bytes::from(" +1_000 ")).unwrap(), 1000);
        for bad in ["", "1.0", "abc", "1__0", "_1", "--1", "+"] {
            assert!(i64::from_wire(Bytes::from(bad)).is_err(), "{bad:?}");
        }
        assert!(i32::from_wire(Bytes::from("4294967296")).is_err());
    }

    #[test]
    fn booleans_are_exactly_true_and_false() {
        assert!(bool::from_wire(Bytes::from("True")).unwrap());
        assert!(!bool::from_wire(Bytes::from("False")).unwrap());
        assert!(bool::from_wire(Bytes::from("true")).is_err());
    }

    #[test]
    fn list_of_is_int16_prefixed_elements() {
        let mut out = BytesMut::new();
        vec![3i64, 7, 9].to_wire(&mut out).unwrap();
        assert_eq!(out, &b"\x00\x013\x00\x017\x00\x019"[..]);
        assert_eq!(Vec::<i64>::from_wire(out.freeze()).unwrap(), vec![3, 7, 9]);
        assert!(Vec::<i64>::from_wire(Bytes::from_static(b"\x00\x05ab")).is_err());
    }

    #[test]
    fn a_value_of_exactly_65535_bytes_fits_and_one_more_is_refused() {
        let mut amp_box = AmpBox::new();
        Bytes::from(vec![b'x'; 65_535])
            .to_box("v", &mut amp_box)
            .unwrap();
        assert_eq!(amp_box.get(b"v").unwrap().len(), 65_535);
        assert_eq!(
            Bytes::from(vec![b'x'; 65_536]).to_box("v", &mut amp_box),
            Err(ArgumentError::TooLong {
                key: "v",
                len: 65_536
            })
        );
        // A list whose whole form is too long is refused under the list's own name.
        let long = vec![Bytes::from(vec![b'x'; 40_000]); 2];
        assert_eq!(
            long.to_box("list", &mut amp_box),
            Err(ArgumentError::TooLong {
                key: "list",
                len: 80_004
            })
        );
    }
}
