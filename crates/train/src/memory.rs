//! Sizing a model before allocating it: the memory a run needs is estimated from the
//! widths, the rows per forward pass and the dtype, and a run over the limit is
//! refused with a message instead of growing until the allocator aborts.
//!
//! The limit (`EOS_MEMORY_LIMIT`, else the machine's memory) has one owner,
//! [`eos_model::memory`], which also sizes a network's parameters before
//! `Network::random` allocates them.

use crate::error::Error;
pub use eos_model::memory::{limit, LIMIT_VAR};

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

/// Refuses a model whose [`estimate`] exceeds the [`limit`].
pub fn check(widths: &[usize], rows: usize, dtype_bytes: usize) -> crate::Result<()> {
    let need = estimate(widths, rows, dtype_bytes);
    let Some(limit) = eos_model::memory::over_limit(need)? else {
        return Ok(());
    };
    let shown: Vec<String> = widths.iter().take(6).map(|w| w.to_string()).collect();
    let what = format!(
        "widths [{}{}] ({} layers)",
        shown.join(", "),
        if widths.len() > 6 { ", …" } else { "" },
        widths.len().saturating_sub(1),
    );
    Err(Error::config(
        "model",
        eos_model::memory::refusal(&what, need, limit),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_and_limit() {
        // [2, 3, 1]: 2·3 + 3 + 3·1 + 1 = 13 parameters; 6 units, 4 rows; f64.
        assert_eq!(estimate(&[2, 3, 1], 4, 8), (10 * 13 + 4 * 4 * 6) * 8);
        // The case: [20, 20000, 20000, 4] in f64 is about 31 GiB.
        let big = estimate(&[20, 20_000, 20_000, 4], 1000, 8);
        assert!(big > 30 << 30 && big < 32 << 30, "{big}");
    }
}
