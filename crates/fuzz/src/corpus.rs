//! Valid inputs of every format, generated in code from the seeded RNG: safetensors
//! probe cases and datasets, IDX files, `.npy` arrays, `.npz` archives (stored and
//! deflated), CIFAR-10 records, and gzip wrapping.
//!
//! Each builder writes the format exactly as its reader's module docs describe, so an
//! unmutated input is accepted (the driver's tests check that). The `header` hooks let
//! the generators mutate a text header (safetensors JSON, npy dict) *before* its
//! length prefix is written, so that mutated headers still reach the parser.

use std::io::Write;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One tensor of a safetensors file: name, dtype (`"F32"`, …), shape, little-endian data.
pub struct StTensor {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// The tensors and string metadata of a safetensors file.
pub type StFile = (Vec<StTensor>, Vec<(String, String)>);

/// A safetensors file: 8-byte LE header length, JSON header, data. `edit` may change
/// the header text before its length is written.
pub fn safetensors_bytes(
    tensors: &[StTensor],
    metadata: &[(String, String)],
    edit: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut header = String::from("{");
    if !metadata.is_empty() {
        let kv: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        header.push_str(&format!("\"__metadata__\":{{{}}}", kv.join(",")));
    }
    let mut offset = 0;
    for t in tensors {
        if header.len() > 1 {
            header.push(',');
        }
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            "\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            t.name,
            t.dtype,
            shape.join(","),
            offset,
            offset + t.data.len()
        ));
        offset += t.data.len();
    }
    header.push('}');
    let mut header = header.into_bytes();
    edit(&mut header);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    for t in tensors {
        out.extend_from_slice(&t.data);
    }
    out
}

/// `n` finite floats in `[-2, 2]` as little-endian `dtype` (`"F32"` or `"F64"`).
pub fn float_data(rng: &mut ChaCha8Rng, dtype: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n {
        let v: f64 = rng.random_range(-2.0..2.0);
        if dtype == "F32" {
            out.extend_from_slice(&(v as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// A probe case of DESIGN.md's interchange format (crates/model/src/io.rs): 1–3
/// layers of width 1–4, optional biases, batch, direction `v.`, extra tensors,
/// metadata `activation`, `loss`, `multipliers`.
pub fn probe_case(rng: &mut ChaCha8Rng) -> StFile {
    let depth = rng.random_range(1..=3);
    let widths: Vec<usize> = (0..=depth).map(|_| rng.random_range(1..=4)).collect();
    let dtype = if rng.random() { "F32" } else { "F64" };
    // The direction `v.` has the model's structure: biases where the model has them.
    let bias: Vec<bool> = (0..depth).map(|_| rng.random_range(0..5) > 0).collect();
    let mut tensors = Vec::new();
    let layer = |rng: &mut ChaCha8Rng, prefix: &str, tensors: &mut Vec<StTensor>| {
        for i in 0..depth {
            let (o, n) = (widths[i + 1], widths[i]);
            tensors.push(StTensor {
                name: format!("{prefix}layers.{i}.weight"),
                dtype,
                shape: vec![o, n],
                data: float_data(rng, dtype, o * n),
            });
            if bias[i] {
                tensors.push(StTensor {
                    name: format!("{prefix}layers.{i}.bias"),
                    dtype,
                    shape: vec![o],
                    data: float_data(rng, dtype, o),
                });
            }
        }
    };
    layer(rng, "", &mut tensors);
    if rng.random_range(0..10) < 6 {
        let n = rng.random_range(1..=3);
        for (name, w) in [("x", widths[0]), ("y", widths[depth])] {
            tensors.push(StTensor {
                name: name.into(),
                dtype,
                shape: vec![n, w],
                data: float_data(rng, dtype, n * w),
            });
        }
    }
    if rng.random_range(0..10) < 3 {
        layer(rng, "v.", &mut tensors);
    }
    if rng.random_range(0..10) < 2 {
        tensors.push(StTensor {
            name: "step".into(),
            dtype: "I64",
            shape: vec![1],
            data: 7i64.to_le_bytes().to_vec(),
        });
    }
    let activations = ["relu", "leaky_relu:0.1", "tanh", "identity", "gelu", "silu"];
    let losses = ["mse", "mse_mean_all", "cross_entropy", "logistic"];
    let mut meta = vec![(
        "activation".to_string(),
        activations[rng.random_range(0..activations.len())].to_string(),
    )];
    if rng.random_range(0..10) < 7 {
        meta.push(("loss".into(), losses[rng.random_range(0..2)].into()));
    }
    if rng.random() {
        let m: Vec<String> = (0..depth).map(|i| format!("{}.5", i + 1)).collect();
        meta.push(("multipliers".into(), m.join(",")));
    }
    (tensors, meta)
}

/// A dataset safetensors file (crates/data/src/tensors_file.rs): `x [n, d]` or
/// `[n, a, b]` of F64/F32/U8/I32/I64 and `y` integer labels `[n]` or one-hot floats.
pub fn dataset_tensors(rng: &mut ChaCha8Rng) -> Vec<StTensor> {
    let n = rng.random_range(1..=4);
    let shape = if rng.random() {
        vec![n, rng.random_range(1..=4)]
    } else {
        vec![n, rng.random_range(1..=3), rng.random_range(1..=3)]
    };
    let count: usize = shape.iter().product();
    let (dtype, data) = match rng.random_range(0..5) {
        0 => ("F32", float_data(rng, "F32", count)),
        1 => ("F64", float_data(rng, "F64", count)),
        2 => ("U8", (0..count).map(|_| rng.random()).collect()),
        3 => ("I32", int_data(rng, 4, count, 100)),
        _ => ("I64", int_data(rng, 8, count, 100)),
    };
    let x = StTensor {
        name: "x".into(),
        dtype,
        shape,
        data,
    };
    let k: usize = rng.random_range(2..=4);
    let y = match rng.random_range(0..3) {
        0 => StTensor {
            name: "y".into(),
            dtype: "I64",
            shape: vec![n],
            data: int_data(rng, 8, n, k as u64),
        },
        1 => StTensor {
            name: "y".into(),
            dtype: "U8",
            shape: vec![n],
            data: int_data(rng, 1, n, k as u64),
        },
        _ => {
            let dt = if rng.random() { "F32" } else { "F64" };
            let mut data = Vec::new();
            for _ in 0..n {
                let c = rng.random_range(0..k);
                for j in 0..k {
                    let v = if j == c { 1.0 } else { 0.0 };
                    if dt == "F32" {
                        data.extend_from_slice(&(v as f32).to_le_bytes());
                    } else {
                        data.extend_from_slice(&f64::to_le_bytes(v));
                    }
                }
            }
            StTensor {
                name: "y".into(),
                dtype: dt,
                shape: vec![n, k],
                data,
            }
        }
    };
    vec![x, y]
}

/// `n` integers in `0..below` as little-endian `width`-byte values.
fn int_data(rng: &mut ChaCha8Rng, width: usize, n: usize, below: u64) -> Vec<u8> {
    (0..n)
        .flat_map(|_| rng.random_range(0..below).to_le_bytes()[..width].to_vec())
        .collect()
}

/// The dict of a `.npy` header, e.g. `{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }`.
pub fn npy_dict(descr: &str, shape: &[usize], fortran: bool) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let f = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {tuple}, }}").into_bytes()
}

/// A `.npy` file of format `version` (1, 2 or 3) from a header dict and a body; the
/// header is padded with spaces and a newline to a multiple of 64 bytes.
pub fn npy_bytes(version: u8, dict: &[u8], body: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let mut header = dict.to_vec();
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// A random array: its descr (mostly supported, sometimes not), shape (rank 0–3,
/// dimensions 0–4) and a body of the right length with finite values.
pub fn npy_array(rng: &mut ChaCha8Rng) -> (&'static str, Vec<usize>, Vec<u8>) {
    const DESCRS: [(&str, usize); 9] = [
        ("<f8", 8),
        ("<f4", 4),
        ("<i8", 8),
        ("<i4", 4),
        ("|u1", 1),
        (">f8", 8),
        ("<f2", 2),
        ("<c16", 16),
        ("|b1", 1),
    ];
    let (descr, width) = DESCRS[if rng.random_range(0..10) == 0 {
        rng.random_range(5..DESCRS.len())
    } else {
        rng.random_range(0..5)
    }];
    let shape: Vec<usize> = (0..rng.random_range(0..=3))
        .map(|_| rng.random_range(0..=4))
        .collect();
    let count: usize = shape.iter().product();
    let body = match descr {
        "<f8" => float_data(rng, "F64", count),
        "<f4" => float_data(rng, "F32", count),
        _ => int_data(rng, width.min(8), count, 4)
            .into_iter()
            .chain(std::iter::repeat_n(0, count * width.saturating_sub(8)))
            .collect(),
    };
    (descr, shape, body)
}

/// A `.npz` archive of `x.npy` (`[n, d]` floats) and `y.npy` (labels or one-hot), the
/// members written by `member` (which may mutate them), stored or deflated.
pub fn npz_bytes(
    rng: &mut ChaCha8Rng,
    mut member: impl FnMut(&mut ChaCha8Rng, Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let n = rng.random_range(1..=4);
    let d = rng.random_range(1..=3);
    let x = npy_bytes(
        1,
        &npy_dict("<f8", &[n, d], false),
        &float_data(rng, "F64", n * d),
    );
    let y = if rng.random() {
        npy_bytes(1, &npy_dict("<i8", &[n], false), &int_data(rng, 8, n, 3))
    } else {
        npy_bytes(1, &npy_dict("|u1", &[n], false), &int_data(rng, 1, n, 3))
    };
    let method = if rng.random() {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in [("x.npy", x), ("y.npy", y)] {
        let bytes = member(rng, bytes);
        // Writing to memory cannot fail.
        let _ = z.start_file(name, opts);
        let _ = z.write_all(&bytes);
    }
    z.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// An IDX file of u8 data (crates/data/src/idx.rs): rank 1 (`[n]`) or 3
/// (`[n, rows, cols]`), dimensions 1–4.
pub fn idx_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let dims: Vec<u32> = if rng.random() {
        vec![rng.random_range(1..=4)]
    } else {
        (0..3).map(|_| rng.random_range(1..=4)).collect()
    };
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in &dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    let count: u32 = dims.iter().product();
    out.extend((0..count).map(|_| rng.random::<u8>()));
    out
}

/// One or two CIFAR-10 records: a label byte 0–9 then 3072 pixel bytes.
pub fn cifar_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..=2) {
        out.push(rng.random_range(0..10));
        let base: u8 = rng.random();
        out.extend((0..3072u32).map(|p| base.wrapping_add((p % 251) as u8)));
    }
    out
}

/// `data` gzip-compressed, as one member or (sometimes) two.
pub fn gzip(rng: &mut ChaCha8Rng, data: &[u8]) -> Vec<u8> {
    let split = if rng.random_range(0..4) == 0 {
        rng.random_range(0..=data.len())
    } else {
        data.len()
    };
    let mut out = Vec::new();
    for part in [&data[..split], &data[split..]] {
        if part.is_empty() && split != 0 {
            continue;
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing to memory cannot fail.
        let _ = enc.write_all(part);
        out.extend(enc.finish().unwrap_or_default());
    }
    out
}
