//! PostgreSQL `numeric` in binary COPY form, converted exactly (or refused) to BigQuery's
//! NUMERIC (Decimal128, scale 9), BIGNUMERIC (Decimal256, scale 38) or its decimal text.
//!
//! Wire form: ndigits i16, weight i16, sign u16, dscale u16, then ndigits base-10000 digits.
//! value = Σ digit[i] × 10000^(weight − i).

use arrow_buffer::i256;

const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;

/// A parsed numeric: sign, base-10000 digits and the weight of the first digit.
#[derive(Debug)]
pub struct PgNumeric<'a> {
    negative: bool,
    weight: i16,
    dscale: u16,
    digits: &'a [u8],
}

impl<'a> PgNumeric<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Self, String> {
        if raw.len() < 8 {
            return Err("truncated numeric".into());
        }
        let ndigits = i16::from_be_bytes([raw[0], raw[1]]);
        let weight = i16::from_be_bytes([raw[2], raw[3]]);
        let sign = u16::from_be_bytes([raw[4], raw[5]]);
        let dscale = u16::from_be_bytes([raw[6], raw[7]]);
        match sign {
            SIGN_NAN => return Err("NaN has no BigQuery value".into()),
            SIGN_PINF | SIGN_NINF => return Err("Infinity has no BigQuery value".into()),
            0 | SIGN_NEG => {}
            other => return Err(format!("unknown numeric sign {other:#x}")),
        }
        let digits = &raw[8..];
        if ndigits < 0 || digits.len() != ndigits as usize * 2 {
            return Err("malformed numeric".into());
        }
        Ok(Self { negative: sign == SIGN_NEG, weight, dscale, digits })
    }

    fn digit(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.digits[2 * i], self.digits[2 * i + 1]])
    }

    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// The digit groups as (multiplier, value) for accumulation, and the number of decimal
    /// places the accumulated integer holds. The last group's trailing zeros are dropped:
    /// they are padding to a group of 4, and keeping them would overflow an i128 for a
    /// 38-digit value.
    fn groups(&self) -> (impl Iterator<Item = (u16, u16)> + '_, i32) {
        let n = self.ndigits();
        let mut frac = 4 * (n as i32 - 1 - self.weight as i32);
        let (mut last_mul, mut last) = (10_000u16, if n > 0 { self.digit(n - 1) } else { 0 });
        while last != 0 && last % 10 == 0 {
            last /= 10;
            last_mul /= 10;
            frac -= 1;
        }
        let it = (0..n).map(move |i| if i + 1 == n { (last_mul, last) } else { (10_000, self.digit(i)) });
        (it, frac)
    }

    /// The value × 10^scale as i128, exactly, within ±(10^38 − 1); else an error.
    pub fn to_i128(&self, scale: u32) -> Result<i128, String> {
        let mut acc: i128 = 0;
        let (groups, frac) = self.groups();
        for (mul, d) in groups {
            acc = acc
                .checked_mul(mul as i128)
                .and_then(|a| a.checked_add(d as i128))
                .ok_or_else(|| self.too_large("NUMERIC"))?;
        }
        let shift = scale as i32 - frac;
        let scaled = rescale(acc, shift, 10i128, |a, b| a.checked_mul(b), |a, b| (a / b, a % b), 0)
            .ok_or_else(|| self.does_not_fit("NUMERIC", scale))?;
        const MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
        if scaled > MAX {
            return Err(self.too_large("NUMERIC"));
        }
        Ok(if self.negative { -scaled } else { scaled })
    }

    /// The value × 10^scale as i256 within ±(10^76 − 1); else an error.
    pub fn to_i256(&self, scale: u32) -> Result<i256, String> {
        let mut acc = i256::ZERO;
        let (groups, frac) = self.groups();
        for (mul, d) in groups {
            acc = acc
                .checked_mul(i256::from_i128(mul as i128))
                .and_then(|a| a.checked_add(i256::from_i128(d as i128)))
                .ok_or_else(|| self.too_large("BIGNUMERIC"))?;
        }
        let shift = scale as i32 - frac;
        let scaled = rescale(
            acc,
            shift,
            i256::from_i128(10),
            |a, b| a.checked_mul(b),
            |a, b| (a.wrapping_div(b), a.wrapping_rem(b)),
            i256::ZERO,
        )
        .ok_or_else(|| self.does_not_fit("BIGNUMERIC", scale))?;
        let max = i256::from_i128(10).wrapping_pow(76).wrapping_sub(i256::ONE);
        if scaled > max {
            return Err(self.too_large("BIGNUMERIC"));
        }
        Ok(if self.negative { scaled.wrapping_neg() } else { scaled })
    }

    /// The exact decimal text, with `dscale` places after the point as PostgreSQL prints it.
    pub fn to_text(&self) -> String {
        let mut int_part = String::new();
        let mut frac_part = String::new();
        for i in 0..self.ndigits() {
            let pos = self.weight as i32 - i as i32; // power of 10000
            let d = format!("{:04}", self.digit(i));
            if pos >= 0 {
                int_part.push_str(&d);
            } else {
                // Missing groups between the point and this digit are zeros.
                while (frac_part.len() as i32) < 4 * (-pos - 1) {
                    frac_part.push('0');
                }
                frac_part.push_str(&d);
            }
        }
        // Groups above the last stored digit but left of the point are zeros.
        let last_pos = self.weight as i32 - self.ndigits() as i32 + 1;
        for _ in 0..last_pos.max(0) {
            int_part.push_str("0000");
        }
        let int_part = int_part.trim_start_matches('0');
        let int_part = if int_part.is_empty() { "0" } else { int_part };
        frac_part.truncate(self.dscale as usize);
        while frac_part.len() < self.dscale as usize {
            frac_part.push('0');
        }
        let sign = if self.negative && (int_part != "0" || frac_part.bytes().any(|b| b != b'0')) { "-" } else { "" };
        if frac_part.is_empty() { format!("{sign}{int_part}") } else { format!("{sign}{int_part}.{frac_part}") }
    }

    fn too_large(&self, target: &str) -> String {
        format!("{} is too large for {target}", self.to_text())
    }

    fn does_not_fit(&self, target: &str, scale: u32) -> String {
        format!("{} has more than {scale} decimal places and would be rounded in {target}", self.to_text())
    }
}

/// Multiplies `v` by 10^shift, or divides by 10^-shift only when that is exact.
fn rescale<T: Copy + PartialEq>(
    v: T,
    shift: i32,
    ten: T,
    mul: impl Fn(T, T) -> Option<T>,
    divrem: impl Fn(T, T) -> (T, T),
    zero: T,
) -> Option<T> {
    let mut v = v;
    if shift >= 0 {
        for _ in 0..shift {
            v = mul(v, ten)?;
        }
    } else {
        for _ in 0..(-shift) {
            let (q, r) = divrem(v, ten);
            if r != zero {
                return None;
            }
            v = q;
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the wire form the way PostgreSQL's numeric_send does, from decimal text.
    fn wire(text: &str) -> Vec<u8> {
        let (neg, t) = text.strip_prefix('-').map(|t| (true, t)).unwrap_or((false, text));
        let (ip, fp) = t.split_once('.').unwrap_or((t, ""));
        let dscale = fp.len() as u16;
        let ip = ip.trim_start_matches('0');
        // Pad the integer part on the left and the fraction on the right to groups of 4.
        let ipad = format!("{}{}", "0".repeat((4 - ip.len() % 4) % 4), ip);
        let fpad = format!("{}{}", fp, "0".repeat((4 - fp.len() % 4) % 4));
        let mut groups: Vec<u16> = Vec::new();
        for c in ipad.as_bytes().chunks(4).chain(fpad.as_bytes().chunks(4)) {
            groups.push(std::str::from_utf8(c).unwrap().parse().unwrap());
        }
        let mut weight = ipad.len() as i16 / 4 - 1;
        while groups.first() == Some(&0) {
            groups.remove(0);
            weight -= 1;
        }
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        let mut out = Vec::new();
        out.extend((groups.len() as i16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend((if neg { SIGN_NEG } else { 0 }).to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for g in groups {
            out.extend(g.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_scale_9_is_exact_at_the_extremes() {
        let cases = [
            ("0", 0i128),
            ("1.5", 1_500_000_000),
            ("-0.000000001", -1),
            ("12345678.12", 12_345_678_120_000_000),
            ("10000", 10_000_000_000_000),
            ("99999999999999999999999999999.999999999", 99_999_999_999_999_999_999_999_999_999_999_999_999),
            ("-99999999999999999999999999999.999999999", -99_999_999_999_999_999_999_999_999_999_999_999_999),
        ];
        for (text, want) in cases {
            let w = wire(text);
            let n = PgNumeric::parse(&w).unwrap();
            assert_eq!(n.to_i128(9).unwrap(), want, "{text}");
            assert_eq!(n.to_text(), text, "{text}");
        }
    }

    #[test]
    fn numeric_refuses_rounding_and_overflow() {
        let w = wire("0.0000000001");
        assert!(PgNumeric::parse(&w).unwrap().to_i128(9).unwrap_err().contains("rounded"));
        let w = wire("100000000000000000000000000000");
        assert!(PgNumeric::parse(&w).unwrap().to_i128(9).unwrap_err().contains("too large"));
        let nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
        assert!(PgNumeric::parse(&nan).unwrap_err().contains("NaN"));
    }

    #[test]
    fn bignumeric_holds_38_places() {
        let text = "-12345678901234567890123456789012345678.12345678901234567890123456789012345678";
        let w = wire(text);
        let n = PgNumeric::parse(&w).unwrap();
        let v = n.to_i256(38).unwrap();
        assert_eq!(v.to_string(), text.replace('.', ""));
        assert_eq!(n.to_text(), text);
    }

    #[test]
    fn text_keeps_trailing_zeros_of_the_scale() {
        let w = wire("2.50");
        assert_eq!(PgNumeric::parse(&w).unwrap().to_text(), "2.50");
        let w = wire("0.0001");
        assert_eq!(PgNumeric::parse(&w).unwrap().to_text(), "0.0001");
        let w = wire("120000");
        assert_eq!(PgNumeric::parse(&w).unwrap().to_text(), "120000");
    }
}
