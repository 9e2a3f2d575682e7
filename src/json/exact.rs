//! JSON numbers compared on their exact decimal value, as the tap wrote them. A 64-bit float
//! holds about 16 digits: `-9999999999999999999999999999.9999999999` (a NUMERIC(38,10) column's
//! own minimum) and `-1e28` are the same double, so bounds compared as floats refuse legal
//! values and accept illegal ones. Here a number is its digits and an exponent, read in place
//! (no allocation); only `multipleOf` with a step that is not a power of ten needs big integers.

use std::cmp::Ordering;

use num_bigint::BigUint;

/// A JSON number's value: `0.d1d2d3... x 10^exponent`, its significant digits read from the
/// text (leading and trailing zeros skipped).
#[derive(Clone, Copy, Debug)]
pub struct Exact<'a> {
    negative: bool,
    /// The digits before and after the point, as written (zeros included).
    whole: &'a [u8],
    fraction: &'a [u8],
    /// Index of the first and one past the last significant digit in `whole ++ fraction`;
    /// `first == end` for zero.
    first: usize,
    end: usize,
    /// Decimal exponent of the first significant digit's place + 1 (scientific form
    /// `0.d1d2... x 10^exponent`); meaningless for zero.
    exponent: i64,
}

impl<'a> Exact<'a> {
    /// Reads a JSON number (`-12.50e+3`; a leading `+` too, as number-in-string values may
    /// have); `None` for anything else, and for exponents past ±10^15 (no column or bound is
    /// that far, and it keeps the arithmetic in range).
    pub fn parse(text: &'a str) -> Option<Exact<'a>> {
        let b = text.as_bytes();
        let (negative, mut i) = match b.first()? {
            b'-' => (true, 1),
            b'+' => (false, 1),
            _ => (false, 0),
        };
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let whole = &b[start..i];
        let mut fraction: &[u8] = &[];
        if b.get(i) == Some(&b'.') {
            let f = i + 1;
            i = f;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            fraction = &b[f..i];
            if fraction.is_empty() {
                return None;
            }
        }
        if whole.is_empty() {
            return None;
        }
        let mut exp: i64 = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let sign = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    -1
                }
                Some(b'+') => {
                    i += 1;
                    1
                }
                _ => 1,
            };
            let s = i;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                exp = exp.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
                if exp > 1_000_000_000_000_000 {
                    return None;
                }
                i += 1;
            }
            if i == s {
                return None;
            }
            exp *= sign;
        }
        if i != b.len() {
            return None;
        }
        let digit = |k: usize| if k < whole.len() { whole[k] } else { fraction[k - whole.len()] };
        let len = whole.len() + fraction.len();
        let first = (0..len).find(|k| digit(*k) != b'0').unwrap_or(len);
        let end = (first..len).rev().find(|k| digit(*k) != b'0').map_or(first, |k| k + 1);
        // The first significant digit at index `first` has place whole.len() - 1 - first.
        let exponent = exp + whole.len() as i64 - first as i64;
        Some(Exact { negative, whole, fraction, first, end, exponent })
    }

    pub fn is_zero(&self) -> bool {
        self.first == self.end
    }

    /// Whether the value is a whole number (`1.0` and `1e3` are; `1.00000000000000000000001` is
    /// not, though it is the double 1.0).
    pub fn is_integer(&self) -> bool {
        self.is_zero() || self.exponent >= (self.end - self.first) as i64
    }

    fn digit(&self, k: usize) -> u8 {
        if k < self.whole.len() { self.whole[k] } else { self.fraction[k - self.whole.len()] }
    }

    /// The significant digits, in order.
    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        (self.first..self.end).map(|k| self.digit(k))
    }

    /// Compares absolute values.
    fn cmp_magnitude(&self, other: &Exact<'_>) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.exponent.cmp(&other.exponent).then_with(|| {
            // Same magnitude: the digits decide, a missing digit counting as 0 (and digit
            // strings end in a non-zero digit, so the longer one is larger when a prefix).
            self.digits().cmp(other.digits())
        })
    }

    /// The exact value as `integer x 10^power`: the significant digits and the power of ten
    /// of the last one.
    fn integer_and_power(&self) -> (BigUint, i64) {
        let digits: Vec<u8> = self.digits().map(|d| d - b'0').collect();
        let n = BigUint::from_radix_be(&digits, 10).unwrap_or_default();
        (n, self.exponent - (self.end - self.first) as i64)
    }

    /// Whether this number is an integer multiple of `step` (a positive number), exactly.
    pub fn is_multiple_of(&self, step: &Exact<'_>) -> bool {
        if self.is_zero() {
            return true;
        }
        if step.is_zero() {
            return false;
        }
        let (a, p) = self.integer_and_power();
        let (b, q) = step.integer_and_power();
        // value / step = (a / b) * 10^(p - q). Neither a nor b ends in a zero digit.
        if p >= q {
            // b must divide a * 10^(p-q): compare modulo b (10^(p-q) by modular power, so a far
            // exponent costs nothing).
            if b == BigUint::from(1u8) {
                return true;
            }
            let ten = BigUint::from(10u8);
            let shift = BigUint::from((p - q) as u64);
            (a * ten.modpow(&shift, &b)) % &b == BigUint::ZERO
        } else {
            // b * 10^(q-p) would have to divide a, so 10 would divide a: it does not, a ends
            // in a non-zero digit.
            false
        }
    }
}

impl PartialEq for Exact<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Exact<'_> {}

impl PartialOrd for Exact<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Exact<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |e: &Exact<'_>| {
            if e.is_zero() {
                0
            } else if e.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if sign(self) < 0 => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            unequal => unequal,
        }
    }
}

/// Whether `text` (a JSON number) is exactly the value a 64-bit float read from it holds when
/// written back in its shortest form: `0.1` is (it reads back as `0.1`), `0.30000000000000004`
/// is, `12345678901234567890.1234567891` is not (it comes back `12345678901234567000`).
pub fn survives_f64(text: &str, value: f64) -> bool {
    let mut shortest = StackText::default();
    // `{:e}` of an f64 is its shortest round-trip form; at most ~25 bytes, no allocation.
    if std::fmt::Write::write_fmt(&mut shortest, format_args!("{value:e}")).is_err() {
        return false;
    }
    match (Exact::parse(text), std::str::from_utf8(shortest.bytes()).ok().and_then(Exact::parse)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A small text written on the stack.
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t: &str) -> Exact<'_> {
        Exact::parse(t).unwrap_or_else(|| panic!("{t}"))
    }

    #[test]
    fn orders_exactly() {
        assert!(e("-9999999999999999999999999999.9999999999") > e("-1e28"));
        assert!(e("-10000000000000000000000000000") == e("-1e28"));
        assert!(e("1.0") == e("1"));
        assert!(e("0.000") == e("-0"));
        assert!(e("1e-3") == e("0.001"));
        assert!(e("100") > e("99.999999999999999999999"));
        assert!(e("-100") < e("-99.999999999999999999999"));
        assert!(e("18446744073709551615") > e("18446744073709551614.99999"));
        assert!(e("12.5e1") == e("125"));
        assert!(Exact::parse("1.").is_none());
        assert!(Exact::parse(".5").is_none());
        assert!(Exact::parse("1e").is_none());
        assert!(Exact::parse("--1").is_none());
    }

    #[test]
    fn multiples_exactly() {
        assert!(e("0.1234567891").is_multiple_of(&e("1e-10")));
        assert!(!e("0.12345678912").is_multiple_of(&e("1e-10")));
        assert!(e("12345678901234567890.1234567891").is_multiple_of(&e("0.0000000001")));
        assert!(e("7.5").is_multiple_of(&e("2.5")));
        assert!(!e("7.6").is_multiple_of(&e("2.5")));
        assert!(!e("1e400").is_multiple_of(&e("3")));
        assert!(e("3e400").is_multiple_of(&e("3")));
        assert!(e("0").is_multiple_of(&e("0.3")));
        assert!(e("0.9").is_multiple_of(&e("0.3")));
        assert!(!e("0.5").is_multiple_of(&e("0.2")));
        assert!(e("100").is_multiple_of(&e("20")));
        assert!(e("1").is_multiple_of(&e("1e-400")));
        assert!(!e("1e-401").is_multiple_of(&e("1e-400")));
        assert!(e("25e-1").is_multiple_of(&e("0.5")));
    }

    #[test]
    fn float_survival() {
        assert!(survives_f64("0.1", 0.1));
        assert!(survives_f64("1e3", 1000.0));
        assert!(survives_f64("123.4500", 123.45));
        assert!(!survives_f64("12345678901234567890.1234567891", 12345678901234567890.1234567891));
        assert!(!survives_f64("0.10000000000000000001", 0.1));
    }
}
