//! The multi-layer perceptron as a layer list: per hidden layer dense → activation →
//! dropout, then a dense layer to the logits (softmax cross-entropy, or squared error for
//! regression, is the loss the backends put on them).

use super::hparams::Activation;
use super::layers::{Arch, Layer};

impl Arch {
    /// An MLP with ReLU hidden layers of the given widths.
    pub fn mlp(inputs: usize, hidden: &[usize], classes: usize) -> Arch {
        let mut layers = Vec::with_capacity(3 * hidden.len() + 1);
        let mut width = inputs;
        for &h in hidden {
            layers.push(Layer::Dense {
                inputs: width,
                outputs: h,
            });
            layers.push(Layer::Activation(Activation::Relu));
            layers.push(Layer::Dropout);
            width = h;
        }
        layers.push(Layer::Dense {
            inputs: width,
            outputs: classes,
        });
        Arch { inputs, layers }
    }

    /// The same network with `activation` in every activation layer.
    pub fn with_activation(mut self, activation: Activation) -> Arch {
        for layer in &mut self.layers {
            if let Layer::Activation(a) = layer {
                *a = activation;
            }
        }
        self
    }

    /// The hidden layers' widths, for an MLP (the dense layers' outputs but the last).
    pub fn hidden_widths(&self) -> Vec<usize> {
        let widths = self.dense_widths();
        widths[1..widths.len() - 1].to_vec()
    }

    /// Whether this is an MLP as [`Arch::mlp`] builds it, with one activation throughout:
    /// what the CUDA backend's fused kernels run.
    pub fn mlp_activation(&self) -> Option<Activation> {
        let hidden = self.hidden_widths();
        let activation = self.activations().next().unwrap_or_default();
        let rebuilt = Arch::mlp(self.inputs, &hidden, self.outputs()).with_activation(activation);
        (rebuilt == *self).then_some(activation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mlp_is_dense_activation_dropout_per_hidden_layer() {
        let arch = Arch::mlp(4, &[3], 2).with_activation(Activation::Tanh);
        assert_eq!(
            arch.layers,
            vec![
                Layer::Dense {
                    inputs: 4,
                    outputs: 3
                },
                Layer::Activation(Activation::Tanh),
                Layer::Dropout,
                Layer::Dense {
                    inputs: 3,
                    outputs: 2
                },
            ]
        );
        assert_eq!(arch.hidden_widths(), vec![3]);
        assert_eq!(arch.mlp_activation(), Some(Activation::Tanh));
        assert_eq!(
            Arch::mlp(4, &[], 2).mlp_activation(),
            Some(Activation::Relu)
        );
        let mut mixed = Arch::mlp(4, &[3, 3], 2);
        mixed.layers[1] = Layer::Activation(Activation::Gelu);
        assert_eq!(mixed.mlp_activation(), None, "two activations: not one MLP");
    }
}
