//! `[data] kind = "file"` through `eos train` with each container eos-data reads
//! (crates/data/src/file.rs): one batch of 12 images `[n, 1, 6, 6]` in 3 classes
//! written by the test as a safetensors file (`x`, one-hot `y`), an `.npz` archive
//! (members `x.npy`, `y.npy`, numpy's format v1: magic, header dict, little-endian
//! body) and a `.npy` pair (`x.npy` with integer labels `y.npy`, one-hot encoded by
//! `targets`). The three runs of the same small CNN (f64, full batch) must log the
//! same metrics bit for bit, with images keeping their shape; a `.npy` without
//! `y_path` is refused naming `data.path` and `y_path`.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use eos_train::{train, Status, TrainArgs};

const N: usize = 12;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("eos-filedata-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn pixels() -> Vec<f32> {
    (0..N * 36)
        .map(|k| ((k * 37 % 101) as f32 / 50.0) - 1.0)
        .collect()
}

fn labels() -> Vec<i64> {
    (0..N as i64).map(|i| (i * 7 + 1) % 3).collect()
}

fn one_hot() -> Vec<f64> {
    let mut y = vec![0f64; N * 3];
    for (i, c) in labels().into_iter().enumerate() {
        y[i * 3 + c as usize] = 1.0;
    }
    y
}

/// A v1 `.npy` file (numpy.lib.format): magic, version 1.0, header length (u16 LE),
/// the header dict padded with spaces to a multiple of 64 bytes and ended by `\n`.
fn npy(descr: &str, shape: &str, body: Vec<u8>) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(body);
    out
}

fn x_npy() -> Vec<u8> {
    let body = pixels().iter().flat_map(|v| v.to_le_bytes()).collect();
    npy("<f4", &format!("({N}, 1, 6, 6)"), body)
}

fn safetensors_file(dir: &Path) -> PathBuf {
    let x = Tensor::from_vec(pixels(), (N, 1, 6, 6), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(one_hot(), (N, 3), &Device::Cpu).unwrap();
    let p = dir.join("batch.safetensors");
    let map = [("x".to_string(), x), ("y".to_string(), y)]
        .into_iter()
        .collect();
    candle_core::safetensors::save(&map, &p).unwrap();
    p
}

/// `x.npy` and a one-hot `y.npy` (f8) in a deflated `.npz`.
fn npz_file(dir: &Path) -> PathBuf {
    let y = npy(
        "<f8",
        &format!("({N}, 3)"),
        one_hot().iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    let p = dir.join("batch.npz");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in [("x.npy", x_npy()), ("y.npy", y)] {
        z.start_file(name, opts).unwrap();
        z.write_all(&bytes).unwrap();
    }
    z.finish().unwrap();
    p
}

/// `x.npy` and integer labels `y.npy` (i8 LE, shape `(N,)`).
fn npy_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    std::fs::write(&xp, x_npy()).unwrap();
    let y = labels().iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&yp, npy("<i8", &format!("({N},)"), y)).unwrap();
    (xp, yp)
}

const CONFIG: &str = r#"
loss = "mse"
[model]
layers = [
  { type = "conv2d", out = 3, kernel = 3, padding = 1 }, { type = "act", fn = "tanh" },
  { type = "avgpool2d", kernel = 2 }, { type = "flatten" }, { type = "dense", out = 3 },
]
[optim]
lr = 0.2
[train]
steps = 4
dtype = "f64"
[probes]
sharpness = { every = 2, k = 1 }
"#;

fn run(dir: &Path, name: &str, data: &str) -> Result<Vec<serde_json::Value>, String> {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, format!("{CONFIG}[data]\nkind = \"file\"\n{data}")).unwrap();
    let out = dir.join(name);
    let s = train(&TrainArgs {
        config: cfg,
        out: Some(out.clone()),
        device: "cpu".into(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    assert_eq!(s.status, Status::Finished, "{}", s.reason);
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    Ok(text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("time_s");
            v
        })
        .collect())
}

#[test]
fn npz_and_npy_pair_train_as_the_safetensors_file() {
    let dir = scratch("formats");
    let st = safetensors_file(&dir);
    let npz = npz_file(&dir);
    let (xp, yp) = npy_pair(&dir);
    let base = run(&dir, "st", &format!("path = {:?}\n", st)).expect("safetensors");
    assert_eq!(base.len(), 4);
    assert!(base[0]["loss"].as_f64().unwrap() > 0.0);
    assert!(base[2]["sharpness"].as_f64().unwrap() > 0.0);
    let z = run(&dir, "npz", &format!("path = {:?}\n", npz)).expect("npz");
    assert_eq!(z, base, "the .npz run differs from the safetensors run");
    let pair = format!(
        "path = {:?}\ny_path = {:?}\ntargets = \"one_hot\"\n",
        xp, yp
    );
    let p = run(&dir, "npy", &pair).expect("npy pair");
    assert_eq!(
        p, base,
        "the .npy pair run differs from the safetensors run"
    );
    let e = run(&dir, "bad", &format!("path = {:?}\n", xp)).expect_err("no y_path");
    assert!(e.contains("data.path") && e.contains("y_path"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
