//! [`Decimal`] and [`DateTime`]: AMP's two structured value types, kept exact and no_std.

use alloc::string::String;
use core::fmt::{self, Write as _};

/// An AMP `Decimal`: a decimal number kept as its exact text, in the spelling Python's
/// `str(decimal.Decimal(...))` gives it, so a value read from Twisted goes back byte for byte.
///
/// No arithmetic here: convert with a decimal crate of your choice. Parsing accepts what
/// Python's `Decimal` constructor accepts (signs, exponents, `Infinity`, `NaN`, `sNaN` with a
/// payload, surrounding whitespace) and canonicalizes it.
///
/// ```
/// use loomwork::amp::Decimal;
///
/// assert_eq!(Decimal::parse("1.50").unwrap().as_str(), "1.50");
/// assert_eq!(Decimal::parse("1e2").unwrap().as_str(), "1E+2");
/// assert_eq!(Decimal::parse("0.0000001").unwrap().as_str(), "1E-7");
/// assert_eq!(Decimal::parse("-inf").unwrap().as_str(), "-Infinity");
/// assert!(Decimal::parse("1.2.3").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decimal(String);

/// Text that is not a decimal number (or a date and time in AMP's format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ValueError {
    kind: &'static str,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an AMP {} value", self.kind)
    }
}

impl core::error::Error for ValueError {}

const NOT_DECIMAL: ValueError = ValueError { kind: "Decimal" };
const NOT_DATETIME: ValueError = ValueError { kind: "DateTime" };

impl Decimal {
    /// Parses and canonicalizes a decimal number.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let sign = if negative { "-" } else { "" };
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            return Ok(Decimal(alloc::format!("{sign}Infinity")));
        }
        for (prefix, name) in [("snan", "sNaN"), ("nan", "NaN")] {
            if let Some(payload) = lower.strip_prefix(prefix) {
                if !payload.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NOT_DECIMAL);
                }
                let payload = payload.trim_start_matches('0');
                return Ok(Decimal(alloc::format!("{sign}{name}{payload}")));
            }
        }
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(at) => (&body[..at], Some(&body[at + 1..])),
            None => (body, None),
        };
        let exponent: i64 = match exponent {
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NOT_DECIMAL);
                }
                e.parse().map_err(|_| NOT_DECIMAL)?
            }
            None => 0,
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(NOT_DECIMAL);
        }
        let mut coefficient: String = whole.chars().chain(fraction.chars()).collect();
        let stripped = coefficient.trim_start_matches('0').len();
        coefficient.drain(..coefficient.len() - stripped.max(1));
        let fraction_digits = i64::try_from(fraction.len()).map_err(|_| NOT_DECIMAL)?;
        let exponent = exponent.checked_sub(fraction_digits).ok_or(NOT_DECIMAL)?;
        Ok(Decimal(to_scientific_string(sign, &coefficient, exponent)))
    }

    /// The canonical text, as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The General Decimal Arithmetic "to-scientific-string" (what Python's `str` does).
fn to_scientific_string(sign: &str, coefficient: &str, exponent: i64) -> String {
    let n = coefficient.len() as i64;
    let adjusted = exponent + n - 1;
    let mut out = String::from(sign);
    if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            out.push_str(coefficient);
        } else if n > -exponent {
            let (whole, fraction) = coefficient.split_at((n + exponent) as usize);
            let _ = write!(out, "{whole}.{fraction}");
        } else {
            out.push_str("0.");
            for _ in 0..(-exponent - n) {
                out.push('0');
            }
            out.push_str(coefficient);
        }
        return out;
    }
    let (first, rest) = coefficient.split_at(1);
    out.push_str(first);
    if !rest.is_empty() {
        let _ = write!(out, ".{rest}");
    }
    let _ = write!(
        out,
        "E{}{}",
        if adjusted < 0 { '-' } else { '+' },
        adjusted.unsigned_abs()
    );
    out
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for Decimal {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s)
    }
}

/// An AMP `DateTime`: a date and time with microseconds and a fixed UTC offset.
///
/// On the wire it is always 32 characters, `YYYY-MM-DDTHH:MM:SS.ffffff±HH:MM`, as Twisted
/// writes it; note Twisted's quirk, kept here, that a zero offset is written `-00:00`.
///
/// ```
/// use loomwork::amp::DateTime;
///
/// let t = DateTime::parse(b"2012-01-23T12:34:56.054321+01:30").unwrap();
/// assert_eq!((t.year, t.microsecond, t.offset_minutes), (2012, 54_321, 90));
/// assert_eq!(t.to_string(), "2012-01-23T12:34:56.054321+01:30");
/// let utc = DateTime { offset_minutes: 0, ..t };
/// assert_eq!(utc.to_string(), "2012-01-23T12:34:56.054321-00:00");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// 1 to 9999.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to the month's length.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 59.
    pub second: u8,
    /// 0 to 999,999.
    pub microsecond: u32,
    /// The offset from UTC in minutes, east positive; less than a day either way.
    pub offset_minutes: i16,
}

impl DateTime {
    /// Parses Twisted's 32-character form, checking every field's range as Python's
    /// `datetime` does.
    pub fn parse(text: &[u8]) -> Result<Self, ValueError> {
        if text.len() != 32 {
            return Err(NOT_DATETIME);
        }
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        let separators_ok =
            separators.iter().all(|&(at, c)| text[at] == c) && text[19] == b'.' && text[29] == b':';
        let number = |range: core::ops::Range<usize>| -> Result<u32, ValueError> {
            let digits = &text[range];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(NOT_DATETIME);
            }
            Ok(digits
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let sign = match text[26] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(NOT_DATETIME),
        };
        if !separators_ok {
            return Err(NOT_DATETIME);
        }
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        let microsecond = number(20..26)?;
        let (offset_hours, offset_minutes) = (number(27..29)?, number(30..32)?);
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60
            && offset_minutes < 60
            && offset_hours < 24;
        if !valid {
            return Err(NOT_DATETIME);
        }
        // Every field was range-checked above, so the narrowing casts are exact.
        Ok(DateTime {
            year: year as u16,
            month: month as u8,
            day: day as u8,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            microsecond,
            offset_minutes: sign * (offset_hours * 60 + offset_minutes) as i16,
        })
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

impl fmt::Display for DateTime {
    /// Twisted's `'%04i-%02i-%02iT%02i:%02i:%02i.%06i%s%02i:%02i'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.offset_minutes > 0 { '+' } else { '-' };
        let offset = self.offset_minutes.unsigned_abs();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{sign}{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.microsecond,
            offset / 60,
            offset % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn decimals_take_python_canonical_spelling() {
        // Each right-hand side is `str(decimal.Decimal(x))` in CPython 3.11.
        let cases = [
            ("0", "0"),
            ("-0", "-0"),
            ("1.0", "1.0"),
            ("10", "10"),
            ("1E+2", "1E+2"),
            ("1e-1", "0.1"),
            ("1.5E+2", "1.5E+2"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("123.4500", "123.4500"),
            ("00012", "12"),
            (".5", "0.5"),
            ("5.", "5"),
            ("0E+2", "0E+2"),
            ("0.00", "0.00"),
            ("1234E-2", "12.34"),
            ("Infinity", "Infinity"),
            ("-Inf", "-Infinity"),
            ("NaN", "NaN"),
            ("-nan", "-NaN"),
            ("sNaN", "sNaN"),
            ("NaN0012", "NaN12"),
            (" 3.14 ", "3.14"),
        ];
        for (input, python) in cases {
            assert_eq!(Decimal::parse(input).unwrap().as_str(), python, "{input:?}");
        }
        for bad in ["", ".", "1e", "e5", "1.2.3", "abc", "nanx", "1 2", "+-1"] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn date_times_round_trip_and_ranges_are_checked() {
        let text = b"2000-02-29T23:59:59.999999-05:00";
        let t = DateTime::parse(text).unwrap();
        assert_eq!(t.offset_minutes, -300);
        assert_eq!(t.to_string().as_bytes(), text);
        // `+00:00` reads as UTC and is written back as Twisted writes UTC.
        let utc = DateTime::parse(b"2000-01-01T00:00:00.000000+00:00").unwrap();
        assert_eq!(utc.to_string(), "2000-01-01T00:00:00.000000-00:00");
        for bad in [
            &b"2001-02-29T00:00:00.000000+00:00"[..],
            b"2000-13-01T00:00:00.000000+00:00",
            b"2000-01-01T24:00:00.000000+00:00",
            b"2000-01-01T00:00:00.000000*00:00",
            b"2000-01-01T00:00:00.000000+24:00",
            b"2000-01-01 00:00:00.000000+00:00",
            b"2000-01-01T00:00:00.00000+00:00",
        ] {
            assert!(
                DateTime::parse(bad).is_err(),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }
}
