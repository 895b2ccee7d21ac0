//! The lossless map between a network's named parameters ([`NetParams`]) and the
//! per-layer groups of a [`ParamVec`] (one `LayerParams { weight, bias }` per group),
//! so that everything written for `ParamVec` — the optimizer (one implementation for
//! every model), per-group weight norms, update cosines, checkpoints of optimizer
//! state — runs on networks unchanged.
//!
//! Rule (walking the names in flat order): a tensor named `P.bias` that directly
//! follows `P.weight` (same path `P`) is that group's bias; every other tensor opens a
//! group of its own as its `weight`. So dense, conv2d, layernorm, embedding,
//! pos_embedding and symmetric_pair give one group each (`weight` + `bias` when they
//! have one), attention gives two groups (`P.qkv.weight`, then `P.proj.weight`), and a
//! residual's body layers give their own groups in order. Group `g` of the
//! `ParamVec` is "layer g" for every per-layer quantity (lr scales, norms).
//!
//! Groups keep the tensors in flat order (weight before bias, as the layers list
//! them), so `to_f64_vec` is the same vector on both sides and the map is a bijection
//! given the names (tensors are shared, not copied).

use super::NetParams;
use crate::{invalid, LayerParams, ParamVec, Result};

/// `(weight index, bias index)` of each group, indices into the flat tensor list.
pub fn group_indices(names: &[String]) -> Vec<(usize, Option<usize>)> {
    let mut out: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if let (Some(p), Some(last)) = (n.strip_suffix(".bias"), out.last_mut()) {
            let w = &names[last.0];
            if last.1.is_none() && w.strip_suffix(".weight") == Some(p) {
                last.1 = Some(i);
                continue;
            }
        }
        out.push((i, None));
    }
    out
}

impl NetParams {
    /// The groups of this vector as a [`ParamVec`] (tensors shared).
    pub fn to_groups(&self) -> ParamVec {
        let layers = group_indices(&self.names)
            .into_iter()
            .map(|(w, b)| LayerParams {
                weight: self.tensors[w].clone(),
                bias: b.map(|b| self.tensors[b].clone()),
            })
            .collect();
        ParamVec { layers }
    }

    /// The vector with this one's names holding the tensors of `groups` (the inverse
    /// of [`NetParams::to_groups`]); errors unless the grouping and shapes match.
    pub fn from_groups(&self, groups: &ParamVec) -> Result<NetParams> {
        let idx = group_indices(&self.names);
        if idx.len() != groups.layers.len() {
            return invalid(format!(
                "{} parameter groups for a network with {}",
                groups.layers.len(),
                idx.len()
            ));
        }
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for (g, ((_, b), l)) in idx.iter().zip(&groups.layers).enumerate() {
            if b.is_some() != l.bias.is_some() {
                return invalid(format!(
                    "parameter group {g}: bias present on one side only"
                ));
            }
            tensors.push(l.weight.clone());
            tensors.extend(l.bias.clone());
        }
        let out = NetParams::new(self.names.clone(), tensors)?;
        self.check_same_structure(&out)?;
        Ok(out)
    }

    /// The name of each group's first tensor (its `weight`).
    pub fn group_names(&self) -> Vec<String> {
        group_indices(&self.names)
            .into_iter()
            .map(|(w, _)| self.names[w].clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{parse_layers, Network};
    use candle_core::{DType, Device};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_weight_and_bias_of_one_path_only() {
        let n = names(&[
            "layers.0.weight",
            "layers.0.bias",
            "layers.2.qkv.weight",
            "layers.2.proj.weight",
            "layers.3.bias",
            "layers.4.body.0.weight",
            "layers.4.body.0.bias",
        ]);
        assert_eq!(
            group_indices(&n),
            vec![(0, Some(1)), (2, None), (3, None), (4, None), (5, Some(6))]
        );
    }

    #[test]
    fn round_trip_is_exact_and_keeps_flat_order() {
        let layers = parse_layers(
            r#"[{"type":"embedding","vocab":5,"dim":8},{"type":"pos_embedding","len":4,"dim":8},
                {"type":"residual","body":[{"type":"layernorm"},{"type":"attention","heads":2}]},
                {"type":"dense","out":5}]"#,
        )
        .expect("layers");
        let net = Network::random(layers, &[4], 3, 0.1, DType::F64, &Device::Cpu).expect("net");
        let g = net.params.to_groups();
        // embedding, pos, layernorm, qkv, proj, dense
        assert_eq!(g.layers.len(), 6);
        assert_eq!(
            g.to_f64_vec().expect("flat"),
            net.params.to_f64_vec().expect("flat")
        );
        let back = net.params.from_groups(&g).expect("inverse");
        assert_eq!(back.names, net.params.names);
        assert_eq!(
            back.to_f64_vec().expect("flat"),
            net.params.to_f64_vec().expect("flat")
        );
        let mut short = g.clone();
        short.layers.pop();
        assert!(net.params.from_groups(&short).is_err());
    }
}
