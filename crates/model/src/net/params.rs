//! `NetParams`: parameters, directions, gradients and HVPs of a [`super::Network`] as
//! one vector of parameter space, stored as named tensors in flat order.
//!
//! Names are paths: `layers.{i}.weight`, `layers.{i}.bias`, `layers.{i}.body.{j}.weight`
//! (inside a residual), `layers.{i}.qkv.weight`, `layers.{i}.proj.weight` (attention).
//! The flat order (for [`NetParams::to_f64_vec`], dense Hessians and files) is the
//! layers' order, and within a layer the order of its parameter list. The algebra is
//! that of [`crate::ParamVec`] (dot products accumulated in f64 on the host).

use candle_core::{DType, Device, Tensor};

use crate::params::{dot_f64, host_axpy};
use crate::{invalid, rng, Result};

/// A vector of a network's parameter space.
#[derive(Debug, Clone)]
pub struct NetParams {
    pub names: Vec<String>,
    pub tensors: Vec<Tensor>,
}

impl NetParams {
    pub fn new(names: Vec<String>, tensors: Vec<Tensor>) -> Result<Self> {
        if names.len() != tensors.len() {
            return invalid(format!(
                "{} parameter names for {} tensors",
                names.len(),
                tensors.len()
            ));
        }
        Ok(Self { names, tensors })
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.tensors[i])
    }

    /// `(prefix + name, tensor)` pairs in flat order.
    pub fn named_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .zip(&self.tensors)
            .map(|(n, t)| (format!("{prefix}{n}"), t.clone()))
            .collect()
    }

    /// Applies `f` to every tensor, keeping names.
    pub fn map(&self, f: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(Self {
            names: self.names.clone(),
            tensors: self.tensors.iter().map(f).collect::<Result<_>>()?,
        })
    }

    /// Combines two vectors of the same structure tensor by tensor.
    pub fn zip_map(
        &self,
        other: &Self,
        mut f: impl FnMut(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        self.check_same_structure(other)?;
        let tensors = self
            .tensors
            .iter()
            .zip(&other.tensors)
            .map(|(a, b)| f(a, b))
            .collect::<Result<_>>()?;
        Ok(Self {
            names: self.names.clone(),
            tensors,
        })
    }

    /// Errors unless `other` has the same names and shapes.
    pub fn check_same_structure(&self, other: &Self) -> Result<()> {
        if self.names != other.names {
            return invalid(format!(
                "parameter vectors differ in their tensors: {:?} vs {:?}",
                self.names, other.names
            ));
        }
        for ((n, a), b) in self.names.iter().zip(&self.tensors).zip(&other.tensors) {
            if a.dims() != b.dims() {
                return invalid(format!("{n}: shape {:?} expected {:?}", b.dims(), a.dims()));
            }
        }
        Ok(())
    }

    /// Total number of scalars P.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(|t| t.elem_count()).sum()
    }

    pub fn dtype(&self) -> DType {
        self.tensors.first().map_or(DType::F64, |t| t.dtype())
    }

    pub fn device(&self) -> Device {
        self.tensors
            .first()
            .map_or(Device::Cpu, |t| t.device().clone())
    }

    pub fn zeros_like(&self) -> Result<Self> {
        self.map(|t| Ok(t.zeros_like()?))
    }

    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        self.map(|t| Ok(t.to_dtype(dtype)?))
    }

    pub fn to_device(&self, device: &Device) -> Result<Self> {
        self.map(|t| Ok(t.to_device(device)?))
    }

    /// ⟨self, other⟩, accumulated in f64.
    pub fn dot(&self, other: &Self) -> Result<f64> {
        self.check_same_structure(other)?;
        let mut s = 0.0;
        for (a, b) in self.tensors.iter().zip(&other.tensors) {
            s += dot_f64(a, b)?;
        }
        Ok(s)
    }

    pub fn norm(&self) -> Result<f64> {
        Ok(self.dot(self)?.sqrt())
    }

    /// `self + alpha · x`.
    pub fn axpy(&self, alpha: f64, x: &Self) -> Result<Self> {
        self.zip_map(x, |a, b| match host_axpy(a, alpha, b) {
            Some(t) => t,
            None => Ok((a + b.affine(alpha, 0.0)?)?),
        })
    }

    /// `alpha · self`.
    pub fn scale(&self, alpha: f64) -> Result<Self> {
        self.map(|t| Ok(t.affine(alpha, 0.0)?))
    }

    pub fn add(&self, other: &Self) -> Result<Self> {
        self.zip_map(other, |a, b| Ok((a + b)?))
    }

    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.zip_map(other, |a, b| Ok((a - b)?))
    }

    /// The vector flattened to f64 in flat order.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.numel());
        for t in &self.tensors {
            out.extend(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        Ok(out)
    }

    /// A vector with `template`'s structure, dtype and device holding `values`.
    pub fn from_f64_slice(template: &Self, values: &[f64]) -> Result<Self> {
        let n = template.numel();
        if values.len() != n {
            return invalid(format!(
                "parameter vector of length {} expected {n}",
                values.len()
            ));
        }
        let mut off = 0;
        template.map(|t| {
            let k = t.elem_count();
            let part = &values[off..off + k];
            off += k;
            Ok(Tensor::from_slice(part, t.shape(), &Device::Cpu)?
                .to_dtype(t.dtype())?
                .to_device(t.device())?)
        })
    }

    /// A standard normal direction drawn from `seed` (same on every machine).
    pub fn randn_like(&self, seed: u64) -> Result<Self> {
        Self::from_f64_slice(self, &rng::normal_vec(seed, self.numel()))
    }

    /// A Rademacher (±1) direction drawn from `seed`.
    pub fn rademacher_like(&self, seed: u64) -> Result<Self> {
        Self::from_f64_slice(self, &rng::rademacher_vec(seed, self.numel()))
    }
}
