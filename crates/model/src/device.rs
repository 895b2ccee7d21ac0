//! Compute device selection: `cpu`, `cuda` (when compiled with the `cuda` feature)
//! or `auto` (CUDA when compiled in and a GPU answers, else the CPU).

use candle_core::Device;

use crate::{Error, Result};

/// Resolves a `--device` value. `auto` never fails: a missing driver or GPU falls back
/// to the CPU. `cuda` fails with a clear message when CUDA is unavailable.
pub fn pick_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            if !cfg!(feature = "cuda") {
                return Err(Error::Invalid(
                    "--device cuda: this binary was built without the `cuda` feature \
                     (rebuild with `--features cuda`)"
                        .into(),
                ));
            }
            Device::new_cuda(0)
                .map_err(|e| Error::Invalid(format!("--device cuda: no usable CUDA device: {e}")))
        }
        "auto" => {
            if cfg!(feature = "cuda") {
                // A missing driver makes new_cuda return an error (never a panic).
                Ok(Device::new_cuda(0).unwrap_or(Device::Cpu))
            } else {
                Ok(Device::Cpu)
            }
        }
        other => Err(Error::Invalid(format!(
            "--device: unknown device `{other}` (expected auto, cpu or cuda)"
        ))),
    }
}

/// A short name for metadata: `cpu` or `cuda:0`.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda:0".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_resolve_and_unknown_is_an_error() {
        assert!(matches!(pick_device("cpu").unwrap(), Device::Cpu));
        let auto = pick_device("auto").unwrap();
        if !cfg!(feature = "cuda") {
            assert!(matches!(auto, Device::Cpu));
            let e = pick_device("cuda").unwrap_err().to_string();
            assert!(e.contains("without the `cuda` feature"), "{e}");
        }
        let e = pick_device("tpu").unwrap_err().to_string();
        assert!(e.contains("unknown device `tpu`"), "{e}");
        assert_eq!(device_name(&Device::Cpu), "cpu");
    }
}
