//! The settings of a reproduction's two versions as data (issue 11): the reduced one in
//! `experiments/<name>/reduced.toml`, the full one in `experiments/<name>/full.toml`,
//! each read into the reproduction's own `Settings` struct with serde
//! (`deny_unknown_fields`). The files are read by eos-train's config reader
//! (`eos_train::config::overrides`), so a misspelled key or a value of the wrong type
//! is an error naming the file and the dotted key
//! (`experiments/cohen-eos/reduced.toml: key `stepz`: unknown field …`).
//!
//! Batch-size lists end with full-batch GD, which every reproduction that varies the
//! batch runs last: the files list the minibatch sizes and [`then_gd`] appends `None`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use eos_train::config::overrides;

/// The settings file of a version: `full.toml` or `reduced.toml`.
pub fn file_name(full: bool) -> &'static str {
    if full {
        "full.toml"
    } else {
        "reduced.toml"
    }
}

/// The settings file of a version in the folder `dir` (`experiments/<name>`).
pub fn path(dir: &Path, full: bool) -> PathBuf {
    dir.join(file_name(full))
}

/// Reads the settings of a version from `dir/{reduced,full}.toml`.
pub fn load<T: DeserializeOwned>(dir: &Path, full: bool) -> crate::Result<T> {
    let path = path(dir, full);
    let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::io(&path, "read", e))?;
    let origin = path.display().to_string();
    let table = overrides::parse(&text, &origin)?;
    Ok(overrides::from_table(&table, &origin)?)
}

/// A list of minibatch sizes, increasing, read as `[8, 32, 128]`, with full-batch GD
/// (`None`) appended last.
pub fn then_gd<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<usize>>, D::Error> {
    let sizes = Vec::<usize>::deserialize(d)?;
    Ok(sizes.into_iter().map(Some).chain([None]).collect())
}

/// The settings of a version of the reproduction `name` in the workspace's
/// `experiments/` (for tests).
#[cfg(test)]
pub fn of<T: DeserializeOwned>(name: &str, full: bool) -> T {
    load(&crate::default_experiments().join(name), full)
        .unwrap_or_else(|e| panic!("{name} settings: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        steps: u64,
        #[serde(deserialize_with = "then_gd")]
        batches: Vec<Option<usize>>,
    }

    fn scratch(text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eos-repro-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("reduced.toml"), text).unwrap();
        dir
    }

    #[test]
    fn files_are_read_and_errors_name_file_and_key() {
        let dir = scratch("steps = 3\nbatches = [8, 32]\n");
        let d: Demo = load(&dir, false).unwrap();
        assert_eq!((d.steps, d.batches), (3, vec![Some(8), Some(32), None]));
        let dir = scratch("steps = 3\nbatches = [8]\nstepz = 4\n");
        let e = format!("{:#}", load::<Demo>(&dir, false).unwrap_err());
        assert!(e.contains("reduced.toml") && e.contains("`stepz`"), "{e}");
        let dir = scratch("steps = \"ten\"\nbatches = [8]\n");
        let e = format!("{:#}", load::<Demo>(&dir, false).unwrap_err());
        assert!(e.contains("reduced.toml") && e.contains("`steps`"), "{e}");
        let e = format!("{:#}", load::<Demo>(&dir, true).unwrap_err());
        assert!(e.contains("full.toml") && e.contains("cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
