//! Parsers of the units the operator reads: durations of its flags
//! (`2m`, `1m30s`, `500ms`) and Kubernetes quantities (`250m`, `1.5Gi`).

use std::time::Duration;

/// Parses a duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`
/// (`2m`, `1m30s`, `500ms`), or a bare number of seconds (`90`).
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{input}: number of seconds too large"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{input}: expected a number followed by ms, s, m or h"
            ));
        }
        let (num, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{input}: number too large"))?;
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "" => return Err(format!("{input}: missing unit after {num} (ms, s, m or h)")),
            other => return Err(format!("{input}: unknown unit {other:?} (ms, s, m or h)")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("{input}: duration too large"))?;
        rest = after;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it back (`2m`, `1m30s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    let ms = d.subsec_millis();
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    if out.is_empty() {
        // Below one millisecond.
        out.push_str("0s");
    }
    out
}

/// Whether `s` is a Kubernetes quantity (`250m`, `1.5Gi`, `1e3`, `+.5`).
pub fn is_quantity(s: &str) -> bool {
    quantity_value(s).is_some()
}

/// The numeric value of a Kubernetes quantity, `None` when `s` is not one.
///
/// Grammar (from apimachinery): `[+-]` then `digits`, `digits.`, `digits.digits` or `.digits`,
/// then an optional suffix: a binary SI suffix (`Ki Mi Gi Ti Pi Ei`), a decimal SI suffix
/// (`n u m k M G T P E`) or a decimal exponent (`e`/`E` followed by a signed integer).
pub fn quantity_value(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if let Some(&c) = b.first()
        && (c == b'+' || c == b'-')
    {
        negative = c == b'-';
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - frac_start;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    let mantissa: f64 = s.get(int_start..i)?.parse().ok()?;
    let suffix = s.get(i..)?;
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let digits = exp.get(1..)?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let e: i32 = digits.parse().ok()?;
            10f64.powi(e)
        }
        _ => return None,
    };
    let v = mantissa * multiplier;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in [
            "0", "1", "250m", "1.5", "1.", ".5", "+1", "-1", "128Mi", "1Ki", "2Ei", "5n", "7u",
            "3k", "1M", "1G", "1T", "1P", "1E", "1e3", "1E3", "1e+3", "1e-3", "1.5e2",
        ] {
            assert!(is_quantity(ok), "{ok} should be accepted");
        }
        for bad in [
            "", "abc", "m", ".", "+", "1.2.3", "1KI", "1Kib", "1mi", "1 m", " 1", "1e", "1e+",
            "1e1.5", "1Ki2", "1K", "0x10", "1,5", "1ee3", "--1",
        ] {
            assert!(!is_quantity(bad), "{bad} should be rejected");
        }
        assert_eq!(quantity_value("250m"), Some(0.25));
        assert_eq!(quantity_value("1Ki"), Some(1024.0));
        assert_eq!(quantity_value("-2k"), Some(-2000.0));
        assert_eq!(quantity_value("1e3"), Some(1000.0));
        assert!(quantity_value("1Gi") > quantity_value("1G"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h1m1s"), Ok(Duration::from_secs(3661)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "2x", "1.5s", "-1s", "2m 3s", "10 s", "m2"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
        for d in [0u64, 1, 59, 60, 90, 3600, 3661] {
            let dur = Duration::from_secs(d);
            assert_eq!(parse_duration(&format_duration(dur)), Ok(dur));
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }
}
