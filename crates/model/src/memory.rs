//! The memory limit every allocation sized from user input is checked against (issue
//! 16: a huge model is refused with a message instead of growing until the allocator
//! aborts). One owner: eos-train's run estimate (`eos_train::memory`) and
//! [`crate::Network::random`] both compare their estimate with [`limit`] here.
//!
//! The limit is `EOS_MEMORY_LIMIT` (bytes, or with a `K`, `M`, `G` or `T` suffix,
//! powers of 1024; `0` or `off` disables the check) when set, else the machine's
//! memory (`MemTotal` of `/proc/meminfo`); where neither is known nothing is checked.

use crate::{Error, Result};

/// The environment variable that overrides the memory limit.
pub const LIMIT_VAR: &str = "EOS_MEMORY_LIMIT";

/// The limit in bytes: `EOS_MEMORY_LIMIT`, else the machine's memory; `None` when
/// the check is disabled or the machine's memory is unknown.
pub fn limit() -> Result<Option<u128>> {
    if let Ok(v) = std::env::var(LIMIT_VAR) {
        return parse_limit(&v).map_err(|p| Error::Invalid(format!("{LIMIT_VAR}={v}: {p}")));
    }
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Ok(info.lines().find_map(|l| {
        let kb = l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
        Some(kb.trim().parse::<u128>().ok()? * 1024)
    }))
}

/// `8G`, `512M`, `1000000` (bytes); `0` or `off`: no limit.
pub fn parse_limit(v: &str) -> std::result::Result<Option<u128>, String> {
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
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .map(Some)
        .ok_or_else(|| "expected bytes, e.g. 8G, 512M or 1000000 (0 or off: no limit)".into())
}

/// Bytes in GiB, for messages.
pub fn gib(bytes: u128) -> f64 {
    bytes as f64 / (1u128 << 30) as f64
}

/// `Some(limit)` when `need` bytes exceed the [`limit`], else `None`.
pub fn over_limit(need: u128) -> Result<Option<u128>> {
    Ok(limit()?.filter(|&l| need > l))
}

/// The error for `what` needing `need` bytes over `limit`: names both sizes and the
/// variable that sets the limit.
pub fn refusal(what: &str, need: u128, limit: u128) -> String {
    format!(
        "{what} need about {:.1} GiB, over the limit of {:.1} GiB (the machine's memory, \
         or {LIMIT_VAR}); make the model smaller",
        gib(need),
        gib(limit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_suffixes() {
        assert_eq!(parse_limit("8G").unwrap(), Some(8 << 30));
        assert_eq!(parse_limit("512m").unwrap(), Some(512 << 20));
        assert_eq!(parse_limit(" 1000 ").unwrap(), Some(1000));
        assert_eq!(parse_limit("off").unwrap(), None);
        assert_eq!(parse_limit("0").unwrap(), None);
        assert!(parse_limit("lots").is_err());
        assert!(parse_limit("99999999999999999999999999999999999999T").is_err());
        let msg = refusal("parameters", 3 << 30, 1 << 30);
        assert!(msg.contains("3.0 GiB") && msg.contains("1.0 GiB"), "{msg}");
        assert!(msg.contains(LIMIT_VAR), "{msg}");
    }
}
