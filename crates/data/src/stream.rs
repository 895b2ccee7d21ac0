//! Online streams: a fresh batch of `B` samples from a generator at every step, as in
//! the one-pass online SGD of Atanasov et al. (THEORY.md §3, MNIST-1M / CIFAR-5M
//! replaced by generated data).
//!
//! ```text
//! batch(t) = generator.sample(B, rng(seed, t))        (t = 0, 1, 2, …)
//! ```
//!
//! The generator of step `t` is derived from `(seed, t)` alone ([`eos_model::rng`]), never
//! from a running state: the batch at step `t` is the same whichever earlier steps
//! were drawn, so a resumed run continues the exact stream. The task (teacher weights,
//! mixture means) is fixed by the generator's own seed; the stream seed only picks
//! the samples.

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::generator::Generator;
use eos_model::rng::{derived_rng, Purpose};

/// An endless, seekable stream of batches from a generator.
#[derive(Debug, Clone)]
pub struct Stream<G> {
    generator: G,
    batch_size: usize,
    seed: u64,
}

impl<G: Generator> Stream<G> {
    /// A stream of `batch_size`-sample batches. Fails for `batch_size = 0`.
    pub fn new(generator: G, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::Invalid(
                "stream batch_size must be at least 1".into(),
            ));
        }
        Ok(Stream {
            generator,
            batch_size,
            seed,
        })
    }

    /// The batch of step `step`: a pure function of `(generator, seed, step)`.
    pub fn batch(&self, step: u64) -> Result<Dataset> {
        let mut rng = derived_rng(self.seed, Purpose::Stream, step);
        self.generator.sample(self.batch_size, &mut rng)
    }

    /// Samples per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The generator.
    pub fn generator(&self) -> &G {
        &self.generator
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::{GaussianMixture, MixtureConfig};
    use crate::sparse_coding::SparseCoding;
    use crate::teacher::{Teacher, TeacherActivation, TeacherConfig};

    #[test]
    fn batch_at_step_t_ignores_earlier_draws() {
        let cfg = TeacherConfig::mlp(6, vec![10], 2, TeacherActivation::Tanh);
        let teacher = Teacher::new(cfg, 1).expect("valid");
        let s = Stream::new(teacher.clone(), 16, 99).expect("valid");
        let fresh = Stream::new(teacher, 16, 99).expect("valid");
        for t in 0..5 {
            s.batch(t).expect("valid");
        }
        let a = s.batch(5).expect("valid");
        let b = fresh.batch(5).expect("valid"); // no earlier step drawn
        assert_eq!(a.x_vec().expect("f64"), b.x_vec().expect("f64"));
        assert_eq!(a.y_vec().expect("f64"), b.y_vec().expect("f64"));
        assert_eq!(a.len(), 16);
        let c = s.batch(6).expect("valid");
        assert_ne!(a.x_vec().expect("f64"), c.x_vec().expect("f64"));
    }

    #[test]
    fn boxed_generators_stream_and_seeds_differ() {
        let g: Box<dyn Generator> =
            Box::new(GaussianMixture::new(MixtureConfig::default(), 0).expect("valid"));
        let s1 = Stream::new(g, 4, 1).expect("valid");
        let s2 = Stream::new(SparseCoding::default(), 4, 1).expect("valid");
        let s3 = Stream::new(SparseCoding::default(), 4, 2).expect("valid");
        assert_eq!(s1.batch(0).expect("valid").input_dim(), 20);
        assert_ne!(
            s2.batch(0).expect("valid").x_vec().expect("f64"),
            s3.batch(0).expect("valid").x_vec().expect("f64")
        );
        assert!(Stream::new(SparseCoding::default(), 0, 0).is_err());
    }
}
