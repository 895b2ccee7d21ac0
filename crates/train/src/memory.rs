//! Sizing a model before allocating it: the memory a run needs is estimated from the
//! widths, the rows per forward pass and the dtype, and a run over the limit is
//! refused with a message instead of growing until the allocator aborts.
//!
//! The limit is `EOS_MEMORY_LIMIT` (bytes, or with a `K`, `M`, `G` or `T` suffix,
//! powers of 1024; `0` or `off` disables the check) when set, else the machine's
//! memory (`MemTotal` of `/proc/meminfo`); where neither is known nothing is checked.

use crate::error::Error;

/// The environment variable that overrides the memory limit.
pub const LIMIT_VAR: &str = "EOS_MEMORY_LIMIT";

/// Copies of the parameter vector a run holds at once: θ, θ₀, the gradient, two
/// optimizer buffers, the probes' vectors (Hv, Lanczos work vectors) and the
/// checkpoint's serialised copy.
const PARAM_COPIES: u128 = 10;

/// Activations kept per row and unit: pre-activation, activation, their gradients.
const ACT_COPIES: u128 = 4;

/// Rows per chunk of the forward pass at most (the model's default chunk size).
const MAX_ROWS: u128 = 2048;

/// The estimated bytes of a run of an MLP with `widths`, `rows` rows per pass
/// (batch size or data set size) and `dtype_bytes` per number.
pub fn estimate(widths: &[usize], rows: usize, dtype_bytes: usize) -> u128 {
    let params: u128 = widths
        .windows(2)
        .map(|w| w[0] as u128 * w[1] as u128 + w[1] as u128)
        .sum();
    let units: u128 = widths.iter().map(|&w| w as u128).sum();
    let rows = (rows as u128).min(MAX_ROWS);
    (PARAM_COPIES * params + ACT_COPIES * rows * units) * dtype_bytes as u128
}

/// The limit in bytes: `EOS_MEMORY_LIMIT`, else the machine's memory.
pub fn limit() -> crate::Result<Option<u128>> {
    if let Ok(v) = std::env::var(LIMIT_VAR) {
        return parse_limit(&v).map_err(|p| Error::Request(format!("{LIMIT_VAR}={v}: {p}")));
    }
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Ok(info.lines().find_map(|l| {
        let kb = l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
        Some(kb.trim().parse::<u128>().ok()? * 1024)
    }))
}

fn parse_limit(v: &str) -> Result<Option<u128>, String> {
    let v = v.trim();
    if v == "0" || v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (num, mult) = match v.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&v[..v.len() - 1], 1u128 << 10),
        Some('M') => (&v[..v.len() - 1], 1 << 20),
        Some('G') => (&v[..v.len() - 1], 1 << 30),
        Some('T') => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    num.trim()
        .parse::<u128>()
        .map(|n| Some(n * mult))
        .map_err(|_| "expected bytes, e.g. 8G, 512M or 1000000 (0 or off: no limit)".into())
}

/// Refuses a model whose [`estimate`] exceeds the [`limit`].
pub fn check(widths: &[usize], rows: usize, dtype_bytes: usize) -> crate::Result<()> {
    let Some(limit) = limit()? else {
        return Ok(());
    };
    let need = estimate(widths, rows, dtype_bytes);
    if need > limit {
        let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
        let shown: Vec<String> = widths.iter().take(6).map(|w| w.to_string()).collect();
        return Err(Error::config(
            "model",
            format!(
                "widths [{}{}] ({} layers) need about {:.1} GiB, over the limit of {:.1} GiB \
                 (the machine's memory, or {LIMIT_VAR}); make the model smaller",
                shown.join(", "),
                if widths.len() > 6 { ", …" } else { "" },
                widths.len().saturating_sub(1),
                gib(need),
                gib(limit)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_and_limit() {
        // [2, 3, 1]: 2·3 + 3 + 3·1 + 1 = 13 parameters; 6 units, 4 rows; f64.
        assert_eq!(estimate(&[2, 3, 1], 4, 8), (10 * 13 + 4 * 4 * 6) * 8);
        assert_eq!(parse_limit("8G").unwrap(), Some(8 << 30));
        assert_eq!(parse_limit("512m").unwrap(), Some(512 << 20));
        assert_eq!(parse_limit("off").unwrap(), None);
        assert!(parse_limit("lots").is_err());
        // The case: [20, 20000, 20000, 4] in f64 is about 31 GiB.
        let big = estimate(&[20, 20_000, 20_000, 4], 1000, 8);
        assert!(big > 30 << 30 && big < 32 << 30, "{big}");
    }
}
