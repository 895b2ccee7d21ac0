//! Not written yet (issue 5).

use super::{Check, Ctx};

pub fn run(_ctx: &Ctx) -> anyhow::Result<Vec<Check>> {
    anyhow::bail!("this reproduction is not written yet")
}
