//! The multi-layer perceptron: ReLU hidden layers, softmax cross-entropy on the logits,
//! dropout after each hidden activation.
//!
//! Parameter layout of one member (its slice of the population's flat buffer), layer by
//! layer: `W_l` `(dims[l], dims[l+1])` row-major, then `b_l` `(dims[l+1])`. Gradients and
//! optimizer state use the same layout, so one optimizer pass covers a whole member.

use super::hparams::Activation;
use crate::rng::{stream_word, unit_f32, Stream};

/// Layer widths from input to logits, e.g. `[64, 128, 128, 10]` (two hidden layers), and
/// the hidden layers' activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlpArch {
    pub dims: Vec<usize>,
    pub activation: Activation,
}

impl MlpArch {
    /// An MLP with ReLU hidden layers.
    pub fn new(inputs: usize, hidden: &[usize], classes: usize) -> Self {
        let mut dims = vec![inputs];
        dims.extend_from_slice(hidden);
        dims.push(classes);
        MlpArch {
            dims,
            activation: Activation::Relu,
        }
    }

    pub fn with_activation(self, activation: Activation) -> Self {
        MlpArch { activation, ..self }
    }

    pub fn n_layers(&self) -> usize {
        self.dims.len() - 1
    }

    pub fn classes(&self) -> usize {
        *self.dims.last().expect("an MLP has an output layer")
    }

    pub fn hidden(&self) -> &[usize] {
        &self.dims[1..self.dims.len() - 1]
    }

    pub fn param_count(&self) -> usize {
        self.dims.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Multiply-adds per sample in the forward pass: `Σ in·out`.
    pub fn macs_per_sample(&self) -> usize {
        self.dims.windows(2).map(|w| w[0] * w[1]).sum()
    }

    /// `(offset of W_l, offset of b_l)` within the member's slice, per layer.
    pub fn layer_offsets(&self) -> Vec<(usize, usize)> {
        let mut offset = 0;
        self.dims
            .windows(2)
            .map(|w| {
                let weights = offset;
                offset += w[0] * w[1];
                let bias = offset;
                offset += w[1];
                (weights, bias)
            })
            .collect()
    }

    /// PyTorch's `nn.Linear` default: every weight and bias uniform in `±1/√fan_in`, drawn
    /// from the counter-based stream `(seed, Init, layer)` so it never depends on the
    /// population around the member.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut params = Vec::with_capacity(self.param_count());
        for (layer, w) in self.dims.windows(2).enumerate() {
            let bound = 1.0 / (w[0] as f32).sqrt();
            let count = (w[0] + 1) * w[1];
            params.extend((0..count as u64).map(|i| {
                let u = unit_f32(stream_word(seed, Stream::Init, layer as u32, 0, i));
                (2.0 * u - 1.0) * bound
            }));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_counts_weights_and_biases() {
        let arch = MlpArch::new(4, &[3, 2], 5);
        assert_eq!(arch.param_count(), 4 * 3 + 3 + 3 * 2 + 2 + 2 * 5 + 5);
        assert_eq!(arch.layer_offsets(), vec![(0, 12), (15, 21), (23, 33)]);
        assert_eq!(arch.init_params(1).len(), arch.param_count());
        assert_ne!(arch.init_params(1), arch.init_params(2));
    }
}
