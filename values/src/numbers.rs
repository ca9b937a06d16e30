//! Numbers as JSON clients send them: every number is a float64, so an integer field gets
//! `8000.0`. [`float_to_integer`] turns such a float into any Rust integer type when it
//! holds an exact integer in range, and [`format_number`] writes a float the way a message
//! should quote it.

use std::fmt::Display;

/// The integer `f` holds, as `T` (named `type_name` in errors): `8000.5 is not an integer`,
/// `10000000000 is out of range for u32`.
pub(crate) fn float_to_integer<T>(f: f64, type_name: &str) -> Result<T, String>
where
    T: TryFrom<i128> + TryFrom<u128>,
{
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(format!("{} is not an integer", format_number(f)));
    }
    // Every integer-valued float in these ranges converts to i128 / u128 exactly.
    let converted = if f < 0.0 && f >= -(2f64.powi(127)) {
        T::try_from(f as i128).ok()
    } else if f >= 0.0 && f < 2f64.powi(128) {
        T::try_from(f as u128).ok()
    } else {
        None
    };
    converted.ok_or_else(|| out_of_range(format_number(f), type_name))
}

/// `{n} is out of range for {type_name}`.
pub(crate) fn out_of_range(n: impl Display, type_name: &str) -> String {
    format!("{n} is out of range for {type_name}")
}

/// A float as JavaScript would print it, so a message quotes what the client sent: `8000`,
/// `8000.5`, `1e+21`, `NaN`, `-Infinity`.
pub fn format_number(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if f != 0.0 && (f.abs() >= 1e21 || f.abs() < 1e-6) {
        // Rust writes `1e21`; JavaScript `1e+21`.
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        // Shortest round-trip digits, no exponent: `8000`, `0.1`, `-0`.
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_integers_convert() {
        assert_eq!(float_to_integer::<u32>(8000.0, "u32"), Ok(8000));
        assert_eq!(float_to_integer::<i8>(-128.0, "i8"), Ok(-128));
        assert_eq!(float_to_integer::<i64>(-0.0, "i64"), Ok(0));
        assert_eq!(
            float_to_integer::<u64>(2f64.powi(63), "u64"),
            Ok(1u64 << 63)
        );
        assert_eq!(
            float_to_integer::<i64>(-(2f64.powi(63)), "i64"),
            Ok(i64::MIN)
        );
        assert_eq!(
            float_to_integer::<u128>(2f64.powi(127), "u128"),
            Ok(1u128 << 127)
        );
    }

    #[test]
    fn fractions_and_out_of_range_are_named() {
        assert_eq!(
            float_to_integer::<u32>(8000.5, "u32"),
            Err("8000.5 is not an integer".into())
        );
        assert_eq!(
            float_to_integer::<u32>(1e10, "u32"),
            Err("10000000000 is out of range for u32".into())
        );
        assert_eq!(
            float_to_integer::<u8>(-1.0, "u8"),
            Err("-1 is out of range for u8".into())
        );
        assert_eq!(
            float_to_integer::<i64>(2f64.powi(63), "i64"),
            Err("9223372036854776000 is out of range for i64".into())
        );
        assert_eq!(
            float_to_integer::<i128>(1e300, "i128"),
            Err("1e+300 is out of range for i128".into())
        );
        assert_eq!(
            float_to_integer::<i32>(f64::NAN, "i32"),
            Err("NaN is not an integer".into())
        );
        assert_eq!(
            float_to_integer::<i32>(f64::NEG_INFINITY, "i32"),
            Err("-Infinity is not an integer".into())
        );
    }

    #[test]
    fn numbers_print_like_javascript() {
        let printed: Vec<String> = [8000.0, 0.5, 1e21, 1.5e-7, 123456789.0, -2.0]
            .into_iter()
            .map(format_number)
            .collect();
        assert_eq!(
            printed,
            ["8000", "0.5", "1e+21", "1.5e-7", "123456789", "-2"]
        );
    }
}
