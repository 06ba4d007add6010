//! A member's architecture as a sequence of typed layers, each with its own shapes, and the
//! parameter layout that follows from it. Families (the MLP today: `mlp.rs`) are builders
//! of such lists; the backends walk the list (CPU: `backend/cpu/network.rs`), so a new
//! family only adds layer kinds.
//!
//! Parameter layout of one member (its slice of the population's flat buffer): the
//! parameterised layers in order, each as its weights then its bias — for a dense layer
//! `W` `(inputs, outputs)` row-major, then `b` `(outputs)`. Gradients and optimizer state
//! use the same layout, so one optimizer pass covers a whole member.

use super::hparams::Activation;
use crate::rng::{stream_word, unit_f32, Stream};

/// One layer of a member's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `y = x·W + b` over rows of `inputs` features, giving `outputs` per row.
    Dense { inputs: usize, outputs: usize },
    /// An elementwise nonlinearity, in place on the layer before it.
    Activation(Activation),
    /// Inverted dropout at the member's rate (a hyperparameter, not a shape), in place.
    Dropout,
}

/// A member's network: the width of its input rows and its layers, input to logits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arch {
    pub inputs: usize,
    pub layers: Vec<Layer>,
}

/// Where one parameterised layer's weights and bias sit in the member's slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSlice {
    pub weights: usize,
    pub bias: usize,
    /// One past the bias.
    pub end: usize,
}

impl Arch {
    /// The dense layers' `(inputs, outputs)`, in order.
    pub fn dense_shapes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.layers.iter().filter_map(|l| match *l {
            Layer::Dense { inputs, outputs } => Some((inputs, outputs)),
            _ => None,
        })
    }

    /// Widths through the dense layers, input to logits: `[inputs, h_1, …, classes]`.
    pub fn dense_widths(&self) -> Vec<usize> {
        std::iter::once(self.inputs)
            .chain(self.dense_shapes().map(|(_, o)| o))
            .collect()
    }

    /// Outputs per row of the last layer (classes, or regression targets).
    pub fn outputs(&self) -> usize {
        self.dense_shapes().last().map_or(self.inputs, |(_, o)| o)
    }

    /// The activations the network applies, in order.
    pub fn activations(&self) -> impl Iterator<Item = Activation> + '_ {
        self.layers.iter().filter_map(|l| match *l {
            Layer::Activation(a) => Some(a),
            _ => None,
        })
    }

    pub fn param_count(&self) -> usize {
        self.dense_shapes().map(|(i, o)| i * o + o).sum()
    }

    /// Multiply-adds per sample in the forward pass: `Σ inputs·outputs` over dense layers.
    pub fn macs_per_sample(&self) -> usize {
        self.dense_shapes().map(|(i, o)| i * o).sum()
    }

    /// Each parameterised layer's slice, in layer order.
    pub fn param_slices(&self) -> Vec<ParamSlice> {
        let mut offset = 0;
        self.dense_shapes()
            .map(|(i, o)| {
                let weights = offset;
                let bias = weights + i * o;
                offset = bias + o;
                ParamSlice {
                    weights,
                    bias,
                    end: offset,
                }
            })
            .collect()
    }

    /// PyTorch's `nn.Linear` default for every dense layer: weights and bias uniform in
    /// `±1/√inputs`, drawn from the counter-based stream `(seed, Init, k)` for the `k`-th
    /// parameterised layer, so it never depends on the population around the member.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut params = Vec::with_capacity(self.param_count());
        for (k, (inputs, outputs)) in self.dense_shapes().enumerate() {
            let bound = 1.0 / (inputs as f32).sqrt();
            let count = (inputs + 1) * outputs;
            params.extend((0..count as u64).map(|i| {
                let u = unit_f32(stream_word(seed, Stream::Init, k as u32, 0, i));
                (2.0 * u - 1.0) * bound
            }));
        }
        params
    }

    /// Whether the layers chain: each dense layer reads what the layer before it gives,
    /// and the list starts and ends with a dense layer.
    pub fn is_consistent(&self) -> bool {
        let mut width = self.inputs;
        for layer in &self.layers {
            if let Layer::Dense { inputs, outputs } = *layer {
                if inputs != width {
                    return false;
                }
                width = outputs;
            }
        }
        matches!(self.layers.first(), Some(Layer::Dense { .. }))
            && matches!(self.layers.last(), Some(Layer::Dense { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_counts_weights_and_biases() {
        let arch = Arch::mlp(4, &[3, 2], 5);
        assert_eq!(arch.param_count(), 4 * 3 + 3 + 3 * 2 + 2 + 2 * 5 + 5);
        let slices: Vec<(usize, usize)> = arch
            .param_slices()
            .iter()
            .map(|s| (s.weights, s.bias))
            .collect();
        assert_eq!(slices, vec![(0, 12), (15, 21), (23, 33)]);
        assert_eq!(arch.param_slices().last().unwrap().end, arch.param_count());
        assert_eq!(arch.init_params(1).len(), arch.param_count());
        assert_ne!(arch.init_params(1), arch.init_params(2));
        assert_eq!(arch.dense_widths(), vec![4, 3, 2, 5]);
        assert_eq!(arch.outputs(), 5);
        assert!(arch.is_consistent());
    }

    #[test]
    fn a_broken_chain_is_inconsistent() {
        let mut arch = Arch::mlp(4, &[3], 2);
        assert!(arch.is_consistent());
        arch.layers[0] = Layer::Dense {
            inputs: 4,
            outputs: 5,
        };
        assert!(!arch.is_consistent());
        arch.layers.clear();
        assert!(!arch.is_consistent());
    }
}
