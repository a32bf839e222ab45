//! Exact conversion of decimal text (`-123.4500`, as MySQL sends DECIMAL and BIGINT
//! UNSIGNED) to the scaled integers of NUMERIC and BIGNUMERIC: never rounded.

use arrow_buffer::i256;

/// `s` × 10^scale as i128 within ±(10^38 − 1), without allocating (the hot path for
/// MySQL DECIMAL and BIGINT UNSIGNED).
pub fn to_i128(s: &str, scale: u32) -> Result<i128, String> {
    const MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
    let b = s.trim().as_bytes();
    let (neg, b) = match b.split_first() {
        Some((b'-', r)) => (true, r),
        Some((b'+', r)) => (false, r),
        _ => (false, b),
    };
    let (mut v, mut frac, mut dot, mut any) = (0i128, 0u32, false, false);
    for &c in b {
        match c {
            b'.' if !dot => dot = true,
            b'0'..=b'9' => {
                any = true;
                if dot {
                    if frac == scale {
                        if c != b'0' {
                            return Err(format!("{s} has more than {scale} decimal places and would be rounded"));
                        }
                        continue;
                    }
                    frac += 1;
                }
                v = v * 10 + (c - b'0') as i128;
                if v > MAX {
                    return Err(format!("{s} is too large for NUMERIC"));
                }
            }
            _ => return Err(format!("{s:?} is not a decimal number")),
        }
    }
    if !any {
        return Err(format!("{s:?} is not a decimal number"));
    }
    for _ in frac..scale {
        v *= 10;
        if v > MAX {
            return Err(format!("{s} is too large for NUMERIC"));
        }
    }
    Ok(if neg { -v } else { v })
}

/// `s` × 10^scale as i256 within ±(10^76 − 1).
pub fn to_i256(s: &str, scale: u32) -> Result<i256, String> {
    let (neg, digits) = scaled_digits(s, scale)?;
    if digits.len() > 76 {
        return Err(format!("{s} is too large for BIGNUMERIC"));
    }
    let ten = i256::from_i128(10);
    let mut v = i256::ZERO;
    for b in digits.bytes() {
        v = v.wrapping_mul(ten).wrapping_add(i256::from_i128((b - b'0') as i128));
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The sign and the digits of `s` × 10^scale without leading zeros; an error if that would
/// drop a non-zero digit.
fn scaled_digits(s: &str, scale: u32) -> Result<(bool, String), String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a decimal number"));
    }
    let scale = scale as usize;
    let kept = frac.get(..scale.min(frac.len())).unwrap_or("");
    let dropped = frac.get(scale.min(frac.len())..).unwrap_or("");
    if dropped.bytes().any(|b| b != b'0') {
        return Err(format!("{s} has more than {scale} decimal places and would be rounded"));
    }
    let mut digits = format!("{int}{kept}{}", "0".repeat(scale - kept.len()));
    let nonzero = digits.find(|c| c != '0').unwrap_or(digits.len());
    digits.drain(..nonzero);
    Ok((neg && !digits.is_empty(), digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_or_refused() {
        assert_eq!(to_i128("123.45", 9).unwrap(), 123_450_000_000);
        assert_eq!(to_i128("-0.000000001", 9).unwrap(), -1);
        assert_eq!(to_i128("18446744073709551615", 9).unwrap(), 18_446_744_073_709_551_615_000_000_000);
        assert_eq!(to_i128("0.000", 9).unwrap(), 0);
        assert_eq!(to_i128("-0", 9).unwrap(), 0);
        assert!(to_i128("1.0000000001", 9).unwrap_err().contains("rounded"));
        assert!(to_i128("100000000000000000000000000000", 9).unwrap_err().contains("too large"));
        assert!(to_i128("1e5", 9).is_err());
        let v = to_i256("-12345678901234567890123456789012345.123456789012345678901234567890", 38).unwrap();
        assert_eq!(v.to_string(), "-1234567890123456789012345678901234512345678901234567890123456789000000000");
    }
}
