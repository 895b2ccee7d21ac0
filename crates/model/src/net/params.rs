//! `NetParams`: parameters, directions, gradients and HVPs of a [`super::Network`] as
//! one vector of parameter space, stored as named tensors in flat order.
//!
//! Names are paths: `layers.{i}.weight`, `layers.{i}.bias`, `layers.{i}.body.{j}.weight`
//! (inside a residual), `layers.{i}.qkv.weight`, `layers.{i}.proj.weight` (attention).
//! The flat order (for [`NetParams::to_f64_vec`], dense Hessians and files) is the
//! layers' order, and within a layer the order of its parameter list. The algebra
//! (dot products accumulated in f64 on the host, axpy, norms, random directions) is
//! [`crate::ParamSpace`]'s, shared with [`crate::ParamVec`].

use candle_core::{DType, Device, Tensor};

use crate::{invalid, Result};

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

    pub fn dtype(&self) -> DType {
        self.tensors.first().map_or(DType::F64, |t| t.dtype())
    }

    pub fn device(&self) -> Device {
        self.tensors
            .first()
            .map_or(Device::Cpu, |t| t.device().clone())
    }
}
