//! The fuzz targets: for each file reader of eos, how to generate an input (a valid
//! file from [`crate::corpus`], mostly mutated by [`crate::mutate`]) and how to run the
//! reader on it.
//!
//! A run returns [`Outcome::Accepted`] (with the bytes of what it built, for the
//! allocation bound) or [`Outcome::Rejected`] (the reader returned an error), or
//! `Err` when the reader *accepted* an input but its result breaks an invariant (e.g.
//! a shape whose product is not the number of elements): that is a failure like a panic.

use std::io::{Cursor, Read};
use std::path::Path;

use candle_core::Device;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::corpus::{self, StFile};
use crate::mutate::{edit_text, mutate_bytes};
use crate::net_corpus;

/// What a reader did with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A valid result of this many bytes (tensors, arrays).
    Accepted(usize),
    /// An error.
    Rejected,
}

/// A fuzz target.
pub struct Target {
    /// The name on the command line.
    pub name: &'static str,
    /// What it reads.
    pub about: &'static str,
    /// A seeded input.
    pub generate: fn(&mut ChaCha8Rng) -> Vec<u8>,
    /// A seeded valid (unmutated) input, which the reader must accept.
    pub valid: fn(&mut ChaCha8Rng) -> Vec<u8>,
    /// The reader on an input.
    pub run: fn(&[u8]) -> Result<Outcome, String>,
    /// The size the allocation bound is proportional to: the input's length, or its
    /// decompressed length for compressed formats.
    pub effective_len: fn(&[u8]) -> usize,
    /// Heap bytes this target may use on top of the driver's soft bound, for a fixed
    /// reservation of a dependency.
    pub extra_base: usize,
}

/// Every target, in the order `all` runs them.
pub const TARGETS: [Target; 8] = [
    Target {
        name: "probe-case",
        about: "eos_model::load_case (safetensors interchange format: model, batch, direction)",
        generate: gen_probe_case,
        valid: valid_probe_case,
        run: run_probe_case,
        effective_len: <[u8]>::len,
        extra_base: 0,
    },
    Target {
        name: "net-case",
        about: "eos_model::net::load_net (eos-net/1: layer list, parameters, batch, direction)",
        generate: gen_net_case,
        valid: valid_net_case,
        run: run_net_case,
        effective_len: <[u8]>::len,
        extra_base: 0,
    },
    Target {
        name: "tensors-file",
        about: "eos_data::tensors_file (safetensors dataset x/y)",
        generate: gen_tensors_file,
        valid: valid_tensors_file,
        run: run_tensors_file,
        effective_len: <[u8]>::len,
        extra_base: 0,
    },
    Target {
        name: "idx",
        about: "eos_data::idx (IDX u8 arrays, plain or gzip)",
        generate: gen_idx,
        valid: valid_idx,
        run: run_idx,
        effective_len: gunzipped_len,
        extra_base: 0,
    },
    Target {
        name: "npy",
        about: "eos_data::npy::parse_npy (.npy v1/v2/v3)",
        generate: gen_npy,
        valid: valid_npy,
        run: run_npy,
        effective_len: <[u8]>::len,
        extra_base: 0,
    },
    Target {
        name: "npz",
        about: "eos_data::npz (.npz stored/deflated, then the x/y dataset)",
        generate: gen_npz,
        valid: valid_npz,
        run: run_npz,
        effective_len: inflated_npz_len,
        // zip 2.6 reserves its central directory from the entry count of the 22-byte
        // end record: up to 65 535 entries of ~83 bytes, twice (entries and index),
        // 10.6 MB whatever the archive's size (a 985-byte input reached it, seed
        // 20261208 input 33521). ZIP64 counts are checked against the file length.
        extra_base: 16 << 20,
    },
    Target {
        name: "cifar",
        about: "eos_data::cifar (CIFAR-10 binary records, plain or gzip)",
        generate: gen_cifar,
        valid: valid_cifar,
        run: run_cifar,
        effective_len: gunzipped_len,
        extra_base: 0,
    },
    Target {
        name: "config",
        about: "eos_train::Config::from_toml (a TOML config + `--set` overrides)",
        generate: gen_config,
        valid: valid_config,
        run: run_config,
        effective_len: <[u8]>::len,
        extra_base: 0,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The path errors name (no file is written).
fn fuzz_path() -> &'static Path {
    Path::new("fuzz-input")
}

/// 1 in 8 inputs is left valid; the rest are mutated at the structure level
/// (`structural`, e.g. a header text edit before the length prefix is written) and/or
/// at the byte level.
fn pick(rng: &mut ChaCha8Rng) -> (bool, bool) {
    match rng.random_range(0..8) {
        0 => (false, false),
        1..=3 => (true, false),
        4..=5 => (false, true),
        _ => (true, true),
    }
}

fn safetensors_input(rng: &mut ChaCha8Rng, build: fn(&mut ChaCha8Rng) -> StFile) -> Vec<u8> {
    let (structural, bytes) = pick(rng);
    let (tensors, meta) = build(rng);
    let mut out = corpus::safetensors_bytes(&tensors, &meta, |h| {
        if structural {
            for _ in 0..rng.random_range(1..=3) {
                edit_text(rng, h);
            }
        }
    });
    if bytes {
        let (t2, m2) = build(rng);
        let other = corpus::safetensors_bytes(&t2, &m2, |_| {});
        mutate_bytes(rng, &mut out, &other);
    }
    out
}

fn gen_probe_case(rng: &mut ChaCha8Rng) -> Vec<u8> {
    safetensors_input(rng, corpus::probe_case)
}

fn run_probe_case(input: &[u8]) -> Result<Outcome, String> {
    match eos_model::load_case_bytes(input, fuzz_path(), None, &Device::Cpu) {
        Err(_) => Ok(Outcome::Rejected),
        Ok(case) => {
            let p = &case.mlp.params;
            let bytes = p
                .layers
                .iter()
                .map(|l| l.weight.elem_count())
                .sum::<usize>()
                * 8;
            if p.layers.is_empty() {
                return Err("accepted a model without layers".into());
            }
            Ok(Outcome::Accepted(bytes))
        }
    }
}

fn gen_net_case(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (structural, bytes) = pick(rng);
    let (tensors, meta) = net_corpus::net_case(rng, |r, model| {
        if structural && r.random() {
            net_corpus::mutate_model(r, model);
        }
    });
    let mut out = corpus::safetensors_bytes(&tensors, &meta, |h| {
        if structural && rng.random() {
            edit_text(rng, h);
        }
    });
    if bytes {
        let (t2, m2) = net_corpus::net_case(rng, |_, _| {});
        let other = corpus::safetensors_bytes(&t2, &m2, |_| {});
        mutate_bytes(rng, &mut out, &other);
    }
    out
}

fn valid_net_case(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (t, m) = net_corpus::net_case(rng, |_, _| {});
    corpus::safetensors_bytes(&t, &m, |_| {})
}

/// An accepted network must be consistent: parameter names and shapes as its layers
/// say, a batch of the network's input and output shapes.
fn run_net_case(input: &[u8]) -> Result<Outcome, String> {
    let Ok(case) = eos_model::net::load_net_bytes(input, fuzz_path(), None, &Device::Cpu) else {
        return Ok(Outcome::Rejected);
    };
    let net = &case.net;
    let count = eos_model::net::param_count(&net.layers, &net.input_shape)
        .map_err(|e| format!("accepted a network whose shapes fail: {e}"))?;
    if count != net.params.numel() as u128 {
        return Err(format!(
            "accepted {} parameters where the layers hold {count}",
            net.params.numel()
        ));
    }
    let net_format = case.metadata.get("format").map(String::as_str) == Some("eos-net/1");
    let rows = match &case.batch {
        Some(b) => {
            net.check_batch(b)
                .map_err(|e| format!("accepted a batch that does not fit: {e}"))?;
            b.x.elem_count() + b.y.elem_count()
        }
        // MLP-format files (a mutation can remove `format`) may come without a batch.
        None if !net_format => 0,
        None => return Err("accepted an eos-net/1 file without a batch".into()),
    };
    if let Some(v) = &case.v {
        net.params
            .check_same_structure(v)
            .map_err(|e| format!("accepted a direction of another structure: {e}"))?;
    }
    Ok(Outcome::Accepted((net.params.numel() + rows) * 8))
}

fn gen_tensors_file(rng: &mut ChaCha8Rng) -> Vec<u8> {
    safetensors_input(rng, |r| (corpus::dataset_tensors(r), Vec::new()))
}

fn run_tensors_file(input: &[u8]) -> Result<Outcome, String> {
    let ds = eos_data::tensors_file::parse_safetensors_named(
        input,
        fuzz_path(),
        "x",
        "y",
        eos_data::Targets::OneHot,
        "fuzz",
    );
    dataset_outcome(ds)
}

/// A dataset's outcome: `x` and `y` must agree on `n`.
fn dataset_outcome(ds: eos_data::Result<eos_data::Dataset>) -> Result<Outcome, String> {
    match ds {
        Err(_) => Ok(Outcome::Rejected),
        Ok(ds) => {
            let (nx, ny) = (ds.x.dims()[0], ds.y.dims()[0]);
            if nx != ny || ds.labels.as_ref().is_some_and(|l| l.len() != nx) {
                return Err(format!("accepted x with {nx} rows, y with {ny}"));
            }
            Ok(Outcome::Accepted(
                (ds.x.elem_count() + ds.y.elem_count()) * 8,
            ))
        }
    }
}

fn gen_idx(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (structural, bytes) = pick(rng);
    let mut out = corpus::idx_bytes(rng);
    if structural {
        // A dimension (or the magic) set to an interesting value.
        let slot = rng.random_range(0..out.len().min(16) / 4);
        let v = crate::mutate::INTERESTING[rng.random_range(0..20)] as u32;
        out[4 * slot..4 * slot + 4].copy_from_slice(&v.to_be_bytes());
    }
    let other = corpus::idx_bytes(rng);
    if bytes && rng.random() {
        mutate_bytes(rng, &mut out, &other);
    }
    if rng.random_range(0..5) < 2 {
        out = corpus::gzip(rng, &out);
        if bytes && rng.random() {
            mutate_bytes(rng, &mut out, &other);
        }
    }
    out
}

fn run_idx(input: &[u8]) -> Result<Outcome, String> {
    let Ok(bytes) = eos_data::read::gunzip_if_gzip(input.to_vec(), fuzz_path()) else {
        return Ok(Outcome::Rejected);
    };
    let mut outcome = Outcome::Rejected;
    for rank in [1u8, 3] {
        if let Ok(a) = eos_data::idx::parse_idx(&bytes, fuzz_path(), rank) {
            let count: Option<usize> = a.dims.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
            if a.dims.len() != rank as usize || count != Some(a.data.len()) {
                return Err(format!(
                    "accepted dims {:?} with {} elements",
                    a.dims,
                    a.data.len()
                ));
            }
            outcome = Outcome::Accepted(a.data.len());
        }
    }
    Ok(outcome)
}

fn gen_npy(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (structural, bytes) = pick(rng);
    let mut out = npy_input(rng, structural);
    if bytes {
        let other = npy_input(rng, false);
        mutate_bytes(rng, &mut out, &other);
    }
    out
}

/// A `.npy` file, its header dict text-edited when `structural`.
fn npy_input(rng: &mut ChaCha8Rng, structural: bool) -> Vec<u8> {
    let (descr, shape, body) = corpus::npy_array(rng);
    let mut dict = corpus::npy_dict(descr, &shape, rng.random_range(0..20) == 0);
    if structural {
        for _ in 0..rng.random_range(1..=3) {
            edit_text(rng, &mut dict);
        }
    }
    let version = [1, 1, 1, 2, 3][rng.random_range(0..5)];
    corpus::npy_bytes(version, &dict, &body)
}

fn run_npy(input: &[u8]) -> Result<Outcome, String> {
    match eos_data::npy::parse_npy(input, fuzz_path()) {
        Err(_) => Ok(Outcome::Rejected),
        Ok(a) => {
            let values = a.to_f64();
            let count: Option<usize> = a.shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
            if count != Some(values.len()) {
                return Err(format!(
                    "accepted shape {:?} with {} elements",
                    a.shape,
                    values.len()
                ));
            }
            Ok(Outcome::Accepted(values.len() * 8))
        }
    }
}

fn gen_npz(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (structural, bytes) = pick(rng);
    let mut out = corpus::npz_bytes(rng, |r, member| {
        if structural && r.random() {
            let mut m = member;
            if r.random() {
                let other = npy_input(r, false);
                mutate_bytes(r, &mut m, &other);
            } else {
                m = npy_input(r, true);
            }
            m
        } else {
            member
        }
    });
    if bytes {
        let other = corpus::npz_bytes(rng, |_, m| m);
        mutate_bytes(rng, &mut out, &other);
    }
    out
}

fn run_npz(input: &[u8]) -> Result<Outcome, String> {
    match eos_data::npz::parse_npz(Cursor::new(input), fuzz_path()) {
        Err(_) => Ok(Outcome::Rejected),
        Ok(arrays) => dataset_outcome(eos_data::npz::npz_dataset(
            arrays,
            fuzz_path(),
            "x",
            "y",
            eos_data::Targets::OneHot,
            "fuzz",
        )),
    }
}

fn gen_cifar(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (structural, bytes) = pick(rng);
    let mut out = corpus::cifar_bytes(rng);
    if structural {
        out[0] = [10, 255, 9][rng.random_range(0..3)];
    }
    let other = corpus::cifar_bytes(rng);
    if bytes && rng.random() {
        mutate_bytes(rng, &mut out, &other);
    }
    if rng.random_range(0..10) < 3 {
        out = corpus::gzip(rng, &out);
        if bytes && rng.random() {
            mutate_bytes(rng, &mut out, &other);
        }
    }
    out
}

fn run_cifar(input: &[u8]) -> Result<Outcome, String> {
    let Ok(bytes) = eos_data::read::gunzip_if_gzip(input.to_vec(), fuzz_path()) else {
        return Ok(Outcome::Rejected);
    };
    match eos_data::cifar::parse_cifar10_batch(&bytes, fuzz_path()) {
        Err(_) => Ok(Outcome::Rejected),
        Ok((x, labels)) => {
            if x.len() != labels.len() * 3072 || labels.iter().any(|&l| l >= 10) {
                return Err(format!(
                    "accepted {} pixels with {} labels",
                    x.len(),
                    labels.len()
                ));
            }
            let ds = eos_data::Dataset::classification(
                x,
                3072,
                labels,
                10,
                eos_data::Targets::OneHot,
                "fuzz",
            );
            dataset_outcome(ds)
        }
    }
}

/// Decompressed length of a gzip input (streamed, capped at 1 GiB), else its length.
fn gunzipped_len(input: &[u8]) -> usize {
    if input.len() < 2 || input[..2] != [0x1f, 0x8b] {
        return input.len();
    }
    let dec = flate2::read::MultiGzDecoder::new(input).take(1 << 30);
    let n = std::io::copy(&mut { dec }, &mut std::io::sink()).unwrap_or(0) as usize;
    n.max(input.len())
}

/// Sum of the decompressed lengths of an archive's members (streamed, each capped at
/// 1 GiB), or the input's length when it is no readable archive.
fn inflated_npz_len(input: &[u8]) -> usize {
    let Ok(mut z) = zip::ZipArchive::new(Cursor::new(input)) else {
        return input.len();
    };
    let mut total = 0usize;
    for i in 0..z.len() {
        if let Ok(m) = z.by_index(i) {
            let n = std::io::copy(&mut m.take(1 << 30), &mut std::io::sink()).unwrap_or(0);
            total = total.saturating_add(n as usize);
        }
    }
    total.max(input.len())
}

fn valid_probe_case(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (t, m) = corpus::probe_case(rng);
    corpus::safetensors_bytes(&t, &m, |_| {})
}

fn valid_tensors_file(rng: &mut ChaCha8Rng) -> Vec<u8> {
    corpus::safetensors_bytes(&corpus::dataset_tensors(rng), &[], |_| {})
}

fn valid_idx(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let out = corpus::idx_bytes(rng);
    if rng.random() {
        corpus::gzip(rng, &out)
    } else {
        out
    }
}

fn valid_npy(rng: &mut ChaCha8Rng) -> Vec<u8> {
    loop {
        let (descr, shape, body) = corpus::npy_array(rng);
        if ["<f8", "<f4", "<i8", "<i4", "|u1"].contains(&descr) {
            let version = [1, 2, 3][rng.random_range(0..3)];
            return corpus::npy_bytes(version, &corpus::npy_dict(descr, &shape, false), &body);
        }
    }
}

fn valid_npz(rng: &mut ChaCha8Rng) -> Vec<u8> {
    corpus::npz_bytes(rng, |_, m| m)
}

fn valid_cifar(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let out = corpus::cifar_bytes(rng);
    if rng.random() {
        corpus::gzip(rng, &out)
    } else {
        out
    }
}

/// Valid configs (the repository's experiments) the config target starts from.
const CONFIGS: [&str; 4] = [
    include_str!("../../../experiments/quickstart.toml"),
    include_str!("../../../experiments/catapult/wide-net.toml"),
    include_str!("../../../experiments/beyond-eos/quadratic.toml"),
    include_str!("../../../experiments/richness-sweep/base.toml"),
];

/// `--set` overrides, each valid on its own; `optim.lr`, `model.depth` and
/// `optim.kind` conflict with some of [`CONFIGS`] (a `[schedule]`, `widths`, Adam
/// keys), so valid inputs skip them.
const OVERRIDES: [&str; 8] = [
    "optim.lr=0.05",
    "train.steps=10",
    "model.depth=4",
    "train.seed=3",
    "optim.kind=\"momentum\"",
    "probes.sharpness={ every = 2, k = 2 }",
    "train.dtype=f32",
    "model.activation=relu",
];

/// The separator between the config text and the overrides (one per line).
const SET_SEPARATOR: &[u8] = b"\n\0--set\n";

fn config_input(rng: &mut ChaCha8Rng, mutate: bool) -> Vec<u8> {
    let mut text = CONFIGS[rng.random_range(0..CONFIGS.len())]
        .as_bytes()
        .to_vec();
    let mut sets: Vec<Vec<u8>> = (0..rng.random_range(0..=3))
        .map(|_| {
            let mut i = rng.random_range(0..OVERRIDES.len());
            if !mutate && matches!(i, 0 | 2 | 4) {
                i += 1; // `train.steps`, `train.seed`, `probes.sharpness` instead
            }
            OVERRIDES[i].as_bytes().to_vec()
        })
        .collect();
    if mutate {
        let (structural, bytes) = pick(rng);
        if structural || !bytes {
            for _ in 0..rng.random_range(1..=3) {
                match sets.is_empty() || rng.random_range(0..2) == 0 {
                    true => edit_text(rng, &mut text),
                    false => {
                        let i = rng.random_range(0..sets.len());
                        edit_text(rng, &mut sets[i]);
                    }
                }
            }
        }
        if bytes {
            let other = CONFIGS[rng.random_range(0..CONFIGS.len())].as_bytes();
            mutate_bytes(rng, &mut text, other);
        }
    }
    let mut out = text;
    out.extend_from_slice(SET_SEPARATOR);
    out.extend_from_slice(&sets.join(&b'\n'));
    out
}

fn gen_config(rng: &mut ChaCha8Rng) -> Vec<u8> {
    config_input(rng, true)
}

fn valid_config(rng: &mut ChaCha8Rng) -> Vec<u8> {
    config_input(rng, false)
}

/// Parses the config with its overrides; an accepted config must write itself back
/// as TOML that parses to the same config (what `--resume` relies on).
fn run_config(input: &[u8]) -> Result<Outcome, String> {
    let (text, sets) = match input
        .windows(SET_SEPARATOR.len())
        .position(|w| w == SET_SEPARATOR)
    {
        Some(i) => (&input[..i], &input[i + SET_SEPARATOR.len()..]),
        None => (input, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let sets: Vec<String> = String::from_utf8_lossy(sets)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let Ok(cfg) = eos_train::Config::from_toml(&text, &sets, "fuzz-input") else {
        return Ok(Outcome::Rejected);
    };
    let resolved = cfg
        .to_toml()
        .map_err(|e| format!("accepted a config that cannot be written back: {e}"))?;
    let again = eos_train::Config::from_toml(&resolved, &[], "resolved")
        .map_err(|e| format!("the written-back config does not parse: {e}\n{resolved}"))?;
    let twice = again
        .to_toml()
        .map_err(|e| format!("the re-read config cannot be written: {e}"))?;
    if twice != resolved {
        return Err(format!(
            "write → read → write changed the config:\n{resolved}\n---\n{twice}"
        ));
    }
    Ok(Outcome::Accepted(resolved.len()))
}
