//! The value transforms of the release actions, as `release/transforms.py` defines them (the reference).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const PSEUDONYM_PREFIX: &str = "p-";
const ON_LINE: f64 = 1.0 - 1e-9;

/// `round(x, 6)` as Python rounds a float: the exact binary value rounded to 6 decimals, ties to even, read
/// back as the nearest double. Rust's `{:.6}` formats the exact value the same way.
pub fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let s = format!("{x:.6}");
    let v: f64 = s.parse().unwrap_or(x);
    if v == 0.0 && x.is_sign_negative() {
        -0.0
    } else {
        v
    }
}

/// `release.transforms.snap_down`: `value` snapped down to the grid, a value on a grid line kept there.
pub fn snap_down(value: f64, grid: f64) -> Result<f64, String> {
    let q = value / grid;
    if !q.is_finite() {
        return Err(if q.is_nan() { "ValueError".into() } else { "OverflowError".into() });
    }
    let mut n = q.floor();
    if q - n > ON_LINE {
        n += 1.0;
    }
    // Python's math.floor gives an int: 0 times the grid is +0.0, never -0.0
    if n == 0.0 {
        n = 0.0;
    }
    Ok(round6(n * grid))
}

/// `make_bucket` on a raw timestamp (millis or micros): the start of its epoch-aligned bucket.
pub fn bucket(value: i64, step: i64) -> Result<i64, String> {
    value.checked_sub(value.rem_euclid(step)).ok_or_else(|| "OverflowError".to_string())
}

/// `make_pseudonymise`: "p-" and the first 32 hex digits of HMAC-SHA256(key, the UTF-8 value).
pub fn pseudonymise(key: &[u8], value: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(2 + 32);
    out.push_str(PSEUDONYM_PREFIX);
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
