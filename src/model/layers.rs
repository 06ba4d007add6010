//! A member's architecture as a sequence of typed layers, each with its own shapes, and the
//! parameter layout that follows from it. Families (`mlp.rs`, `cnn.rs`) are builders of
//! such lists; the backends walk the list (CPU: `backend/cpu/network.rs`), so a new family
//! only adds layer kinds.
//!
//! Activations flow as rows of a block: a dense layer's `(batch, outputs)`, an image
//! layer's `(batch, channels·height·width)` channel-major (`[c][y][x]`), so flattening an
//! image for a dense layer is no operation at all.
//!
//! Parameter layout of one member (its slice of the population's flat buffer): the
//! parameterised layers in order, each as its weights then its bias — a dense layer's `W`
//! `(inputs, outputs)` row-major then `b` `(outputs)`; a convolution's `W`
//! `(out_channels, in_channels·k·k)` row-major then `b` `(out_channels)`. Gradients and
//! optimizer state use the same layout, so one optimizer pass covers a whole member.

use super::hparams::Activation;
use crate::rng::{stream_words, unit_f32, Stream};

/// A 2-D convolution over `(in_channels, height, width)` inputs: `k×k` kernels, a stride,
/// and zero padding of `pad` on every side (`same` padding is `(k − 1)/2` at stride 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    /// The input's spatial size.
    pub height: usize,
    pub width: usize,
}

impl Conv2d {
    /// Output rows: `⌊(h + 2·pad − k)/stride⌋ + 1`; 0 when the kernel does not fit.
    pub fn out_height(&self) -> usize {
        out_size(self.height, self.kernel, self.stride, self.pad)
    }

    pub fn out_width(&self) -> usize {
        out_size(self.width, self.kernel, self.stride, self.pad)
    }

    /// Inputs to one output value: `in_channels·k·k`.
    pub fn fan_in(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub fn in_size(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    pub fn out_size(&self) -> usize {
        self.out_channels * self.out_height() * self.out_width()
    }
}

fn out_size(n: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    match (n + 2 * pad).checked_sub(kernel) {
        Some(room) if stride > 0 => room / stride + 1,
        _ => 0,
    }
}

/// A pooling window of `size×size` at stride `size` over `(channels, height, width)`;
/// rows and columns that do not fill a window are dropped (PyTorch's default, floor mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub channels: usize,
    pub size: usize,
    pub height: usize,
    pub width: usize,
}

impl Pool {
    pub fn out_height(&self) -> usize {
        self.height / self.size.max(1)
    }

    pub fn out_width(&self) -> usize {
        self.width / self.size.max(1)
    }

    pub fn in_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn out_size(&self) -> usize {
        self.channels * self.out_height() * self.out_width()
    }
}

/// Batch normalisation of `(channels, spatial)` blocks: each channel over the batch and
/// its `spatial` positions (a dense block is `spatial = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Norm {
    pub channels: usize,
    pub spatial: usize,
}

impl Norm {
    pub fn size(&self) -> usize {
        self.channels * self.spatial
    }
}

/// Multi-head self-attention's core: `(tokens, 3·dim)` rows of packed queries, keys and
/// values in, `(tokens, dim)` out, over `heads` heads of `dim/heads` features each. Its
/// projections are the token-wise dense layers around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attention {
    pub tokens: usize,
    pub dim: usize,
    pub heads: usize,
}

/// One layer of a member's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `y = x·W + b` over rows of `inputs` features, giving `outputs` per row.
    Dense {
        inputs: usize,
        outputs: usize,
    },
    /// A 2-D convolution with a bias per output channel.
    Conv2d(Conv2d),
    /// The largest value of each window (ties: the first in row-major order gets the
    /// gradient).
    MaxPool(Pool),
    /// The mean of each window.
    AvgPool(Pool),
    /// The mean of each channel over the whole image: `(c, h, w)` → `(c)`.
    GlobalAvgPool(Pool),
    /// Batch normalisation with a scale `γ` and shift `β` per channel (its parameters) and
    /// running statistics (its state, not trained: see [`Arch::trainable_params`]).
    BatchNorm(Norm),
    /// Each sample's `(rows, cols)` block transposed: a patch convolution's `(D, T)`
    /// output becomes `(T, D)` tokens.
    Transpose {
        rows: usize,
        cols: usize,
    },
    /// Learned `(tokens, dim)` position embeddings added in place.
    PositionEmbed {
        tokens: usize,
        dim: usize,
    },
    /// The same dense layer applied to each of `tokens` rows: `(T, in)` → `(T, out)`.
    TokenDense {
        tokens: usize,
        inputs: usize,
        outputs: usize,
    },
    /// Each token normalised over its `dim` features, with a scale and shift per feature.
    LayerNorm {
        tokens: usize,
        dim: usize,
    },
    Attention(Attention),
    /// The start of a residual branch: the block here is added back by the matching
    /// [`Layer::Residual`] (forks and residuals nest like brackets).
    Fork,
    /// The branch's output plus the block at its fork, both `width` wide.
    Residual {
        width: usize,
    },
    /// The mean over tokens: `(T, D)` → `(D)`.
    TokenMean {
        tokens: usize,
        dim: usize,
    },
    /// A learned class token put before the `tokens`: `(T, D)` → `(T + 1, D)`.
    ClassToken {
        tokens: usize,
        dim: usize,
    },
    /// The first of `tokens` tokens (the class token): `(T, D)` → `(D)`.
    FirstToken {
        tokens: usize,
        dim: usize,
    },
    /// An elementwise nonlinearity, in place on the layer before it.
    Activation(Activation),
    /// Inverted dropout at the member's rate (a hyperparameter, not a shape), in place.
    Dropout,
    /// Dropout of whole channels of an image block (`channels` planes per sample), at the
    /// member's rate, in place.
    SpatialDropout {
        channels: usize,
    },
}

impl Layer {
    /// `(inputs, outputs)` per row of a layer that writes a block of its own; `None` for
    /// the in-place layers (activation, dropout).
    pub fn widths(&self) -> Option<(usize, usize)> {
        match *self {
            Layer::Dense { inputs, outputs } => Some((inputs, outputs)),
            Layer::Conv2d(c) => Some((c.in_size(), c.out_size())),
            Layer::MaxPool(p) | Layer::AvgPool(p) => Some((p.in_size(), p.out_size())),
            Layer::GlobalAvgPool(p) => Some((p.in_size(), p.channels)),
            Layer::BatchNorm(n) => Some((n.size(), n.size())),
            Layer::Transpose { rows, cols } => Some((rows * cols, rows * cols)),
            Layer::TokenDense {
                tokens,
                inputs,
                outputs,
            } => Some((tokens * inputs, tokens * outputs)),
            Layer::LayerNorm { tokens, dim } => Some((tokens * dim, tokens * dim)),
            Layer::Attention(a) => Some((a.tokens * 3 * a.dim, a.tokens * a.dim)),
            Layer::TokenMean { tokens, dim } | Layer::FirstToken { tokens, dim } => {
                Some((tokens * dim, dim))
            }
            Layer::ClassToken { tokens, dim } => Some((tokens * dim, (tokens + 1) * dim)),
            Layer::Residual { width } => Some((width, width)),
            Layer::Activation(_)
            | Layer::Dropout
            | Layer::SpatialDropout { .. }
            | Layer::PositionEmbed { .. }
            | Layer::Fork => None,
        }
    }

    /// `(fan_in, weights, biases)` of a parameterised layer (batch norm: `γ` as the
    /// weights, `β` as the bias).
    pub fn param_shape(&self) -> Option<(usize, usize, usize)> {
        match *self {
            Layer::Dense { inputs, outputs } => Some((inputs, inputs * outputs, outputs)),
            Layer::Conv2d(c) => Some((c.fan_in(), c.out_channels * c.fan_in(), c.out_channels)),
            Layer::BatchNorm(n) => Some((1, n.channels, n.channels)),
            Layer::TokenDense {
                inputs, outputs, ..
            } => Some((inputs, inputs * outputs, outputs)),
            Layer::LayerNorm { dim, .. } => Some((1, dim, dim)),
            Layer::PositionEmbed { tokens, dim } => Some((1, tokens * dim, 0)),
            Layer::ClassToken { dim, .. } => Some((1, dim, 0)),
            _ => None,
        }
    }

    /// Values of untrained state the layer keeps: batch norm's running mean and variance.
    pub fn state_len(&self) -> usize {
        match *self {
            Layer::BatchNorm(n) => 2 * n.channels,
            _ => 0,
        }
    }

    /// Multiply-adds per sample in the forward pass.
    pub fn macs(&self) -> usize {
        match *self {
            Layer::Dense { inputs, outputs } => inputs * outputs,
            Layer::Conv2d(c) => c.out_size() * c.fan_in(),
            Layer::TokenDense {
                tokens,
                inputs,
                outputs,
            } => tokens * inputs * outputs,
            // q·kᵀ and p·v: T² multiply-adds per feature each.
            Layer::Attention(a) => 2 * a.tokens * a.tokens * a.dim,
            _ => 0,
        }
    }
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
        self.layers
            .iter()
            .rev()
            .find_map(Layer::widths)
            .map_or(self.inputs, |(_, o)| o)
    }

    /// The activations the network applies, in order.
    pub fn activations(&self) -> impl Iterator<Item = Activation> + '_ {
        self.layers.iter().filter_map(|l| match *l {
            Layer::Activation(a) => Some(a),
            _ => None,
        })
    }

    /// Each parameterised layer's `(fan_in, weights, biases)`, in order.
    pub fn param_shapes(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.layers.iter().filter_map(Layer::param_shape)
    }

    /// Values a member holds: its trainable parameters, then its layers' state (running
    /// statistics). The population's buffers, `copy` and `export` cover all of them.
    pub fn param_count(&self) -> usize {
        self.trainable_params() + self.layers.iter().map(Layer::state_len).sum::<usize>()
    }

    /// The parameters the optimizer trains, at the front of the member's slice: what a
    /// parameter budget (`max_params`) and the records count, as PyTorch's
    /// `parameters()` does.
    pub fn trainable_params(&self) -> usize {
        self.param_shapes().map(|(_, w, b)| w + b).sum()
    }

    /// Where each stateful layer's state starts in the member's slice, in layer order.
    pub fn state_offsets(&self) -> Vec<usize> {
        let mut offset = self.trainable_params();
        (self.layers.iter().filter(|l| l.state_len() > 0))
            .map(|l| {
                let at = offset;
                offset += l.state_len();
                at
            })
            .collect()
    }

    /// Multiply-adds per sample in the forward pass (`Σ inputs·outputs` over dense layers,
    /// `Σ outputs·fan_in` over convolutions); a training step costs about 3× as much.
    pub fn macs_per_sample(&self) -> usize {
        self.layers.iter().map(Layer::macs).sum()
    }

    /// Each parameterised layer's slice, in layer order.
    pub fn param_slices(&self) -> Vec<ParamSlice> {
        let mut offset = 0;
        self.param_shapes()
            .map(|(_, w, b)| {
                let weights = offset;
                let bias = weights + w;
                offset = bias + b;
                ParamSlice {
                    weights,
                    bias,
                    end: offset,
                }
            })
            .collect()
    }

    /// PyTorch's `nn.Linear` and `nn.Conv2d` default for every parameterised layer:
    /// weights and bias uniform in `±1/√fan_in`, drawn from the counter-based stream
    /// `(seed, Init, k)` for the `k`-th parameterised layer, so it never depends on the
    /// population around the member. Batch norm starts as the identity (`γ = 1`, `β = 0`),
    /// its running statistics at mean 0 and variance 1.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut params = Vec::with_capacity(self.param_count());
        let parameterised = self.layers.iter().filter(|l| l.param_shape().is_some());
        for (k, layer) in parameterised.enumerate() {
            let (fan_in, weights, biases) = layer.param_shape().expect("filtered above");
            if let Layer::BatchNorm(_) | Layer::LayerNorm { .. } = layer {
                params.extend((0..weights).map(|_| 1.0).chain((0..biases).map(|_| 0.0)));
                continue;
            }
            // Position embeddings and the class token start small (ViT's are N(0, 0.02²)):
            // uniform of that size.
            let bound = match layer {
                Layer::PositionEmbed { .. } | Layer::ClassToken { .. } => 0.02,
                _ => 1.0 / (fan_in as f32).sqrt(),
            };
            let mut words = vec![0u32; weights + biases];
            stream_words(seed, Stream::Init, k as u32, 0, &mut words);
            params.extend(words.iter().map(|&w| (2.0 * unit_f32(w) - 1.0) * bound));
        }
        for layer in &self.layers {
            if let Layer::BatchNorm(n) = layer {
                params.extend(
                    (0..n.channels)
                        .map(|_| 0.0)
                        .chain((0..n.channels).map(|_| 1.0)),
                );
            }
        }
        params
    }

    /// The shape of the images the network reads: a convolution's input when it starts
    /// with one (a CNN, a vision transformer's patches), else a square one-channel image
    /// when the width is a square, else one line of pixels. Augmentation moves and mirrors
    /// images of this shape.
    pub fn input_image(&self) -> crate::data::ImageShape {
        use crate::data::ImageShape;
        match self.layers.first() {
            Some(Layer::Conv2d(c)) => ImageShape {
                channels: c.in_channels,
                height: c.height,
                width: c.width,
            },
            _ => ImageShape::square(self.inputs).unwrap_or(ImageShape::flat(self.inputs)),
        }
    }

    /// Whether the layers chain: each layer that writes a block reads what the block
    /// before it holds, no shape is empty, and the list starts with a layer that writes a
    /// block and ends with a dense layer.
    pub fn is_consistent(&self) -> bool {
        let mut width = self.inputs;
        // The widths at the open forks.
        let mut forks = Vec::new();
        for layer in &self.layers {
            match *layer {
                Layer::Fork => forks.push(width),
                Layer::Residual { .. } if forks.pop() != Some(width) => return false,
                Layer::Attention(a) if a.heads == 0 || a.dim % a.heads != 0 => return false,
                Layer::PositionEmbed { tokens, dim } if tokens * dim != width => return false,
                Layer::SpatialDropout { channels }
                    if channels == 0 || !width.is_multiple_of(channels) =>
                {
                    return false
                }
                _ => {}
            }
            let image_ok = match *layer {
                Layer::Conv2d(c) => c.stride > 0 && c.kernel > 0 && c.out_size() > 0,
                Layer::MaxPool(p) | Layer::AvgPool(p) | Layer::GlobalAvgPool(p) => {
                    p.size > 0 && p.out_size() > 0
                }
                Layer::BatchNorm(n) => n.size() > 0,
                _ => true,
            };
            if let Some((inputs, outputs)) = layer.widths() {
                if inputs != width || outputs == 0 || !image_ok {
                    return false;
                }
                width = outputs;
            }
        }
        forks.is_empty()
            && self.layers.first().is_some_and(|l| l.widths().is_some())
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

    /// Forks and residuals nest and match widths; attention's heads divide its width.
    #[test]
    fn residuals_and_attention_are_checked() {
        let dense = |inputs, outputs| Layer::Dense { inputs, outputs };
        let tokens = |inputs, outputs| Layer::TokenDense {
            tokens: 2,
            inputs,
            outputs,
        };
        let attention = |heads| {
            Layer::Attention(Attention {
                tokens: 2,
                dim: 4,
                heads,
            })
        };
        let arch = |layers: Vec<Layer>| Arch { inputs: 8, layers };
        let block = |heads, width| {
            vec![
                tokens(4, 4),
                Layer::Fork,
                tokens(4, 12),
                attention(heads),
                Layer::Residual { width },
                dense(8, 3),
            ]
        };
        assert!(arch(block(2, 8)).is_consistent());
        assert!(
            !arch(block(3, 8)).is_consistent(),
            "3 heads do not divide 4"
        );
        assert!(
            !arch(block(2, 6)).is_consistent(),
            "the residual's width is the fork's"
        );
        let mut open = block(2, 8);
        open.remove(4);
        assert!(!arch(open).is_consistent(), "a fork without its residual");
    }
}
