//! The vision-transformer family as a layer list: the image cut into `patch×patch`
//! patches, each linearly embedded (a convolution with stride `patch`, transposed into
//! `(tokens, d_model)` rows) plus a learned position embedding; `layers` pre-norm blocks,
//! each `x + attention(LN(x))` then `x + MLP(LN(x))` with a GELU MLP of `mlp_ratio·d_model`
//! and dropout on both branches' outputs; a final LayerNorm, and the classifier on the
//! mean over tokens or on a learned class token put before the patches (`pool: cls`).

use super::hparams::Activation;
use super::layers::{Arch, Attention, Conv2d, Layer};
use crate::data::ImageShape;

/// The shape knobs of a vision transformer (each may also be tuned per trial).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VitSpec {
    pub patch: usize,
    pub d_model: usize,
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    pub mlp_ratio: usize,
    pub pool: VitPool,
}

/// What the classifier reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VitPool {
    /// The mean over the tokens.
    #[default]
    Mean,
    /// A learned class token put before the patches (`pool: cls`, ViT's original).
    Class,
}

impl VitPool {
    pub fn parse(name: &str) -> Option<VitPool> {
        match name {
            "mean" => Some(VitPool::Mean),
            "cls" => Some(VitPool::Class),
            _ => None,
        }
    }
}

impl Default for VitSpec {
    /// 7×7 patches (16 tokens of a 28×28 image), width 64 in 4 heads, 2 blocks, MLP ×2.
    fn default() -> Self {
        VitSpec {
            patch: 7,
            d_model: 64,
            heads: 4,
            layers: 2,
            mlp_ratio: 2,
            pool: VitPool::Mean,
        }
    }
}

impl Arch {
    /// The transformer `spec` describes over `image`, ending in `classes` outputs; or why
    /// it cannot be built (heads that do not divide the width, a patch that does not
    /// divide the image).
    pub fn vit(image: ImageShape, spec: &VitSpec, classes: usize) -> Result<Arch, String> {
        let VitSpec {
            patch,
            d_model: d,
            heads,
            layers: depth,
            mlp_ratio,
            pool,
        } = *spec;
        if [patch, d, heads, depth, mlp_ratio].contains(&0) {
            return Err(format!(
                "patch, d_model, heads, layers and mlp_ratio must be at least 1 (got {patch}, \
                 {d}, {heads}, {depth}, {mlp_ratio})"
            ));
        }
        if d % heads != 0 {
            return Err(format!("heads {heads} does not divide d_model {d}"));
        }
        let (c, h, w) = (image.channels, image.height, image.width);
        if h % patch != 0 || w % patch != 0 {
            return Err(format!("patch {patch} does not divide the {h}×{w} image"));
        }
        let patches = (h / patch) * (w / patch);
        // The class token, when there is one, is a token like the patches from here on.
        let tokens = patches + usize::from(pool == VitPool::Class);
        let token_dense = |inputs, outputs| Layer::TokenDense {
            tokens,
            inputs,
            outputs,
        };
        let norm = Layer::LayerNorm { tokens, dim: d };
        let width = tokens * d;
        let mut layers = vec![
            Layer::Conv2d(Conv2d {
                in_channels: c,
                out_channels: d,
                kernel: patch,
                stride: patch,
                pad: 0,
                height: h,
                width: w,
            }),
            Layer::Transpose {
                rows: d,
                cols: patches,
            },
        ];
        if pool == VitPool::Class {
            layers.push(Layer::ClassToken {
                tokens: patches,
                dim: d,
            });
        }
        layers.push(Layer::PositionEmbed { tokens, dim: d });
        for _ in 0..depth {
            layers.extend([
                Layer::Fork,
                norm,
                token_dense(d, 3 * d),
                Layer::Attention(Attention {
                    tokens,
                    dim: d,
                    heads,
                }),
                token_dense(d, d),
                Layer::Dropout,
                Layer::Residual { width },
                Layer::Fork,
                norm,
                token_dense(d, mlp_ratio * d),
                Layer::Activation(Activation::Gelu),
                token_dense(mlp_ratio * d, d),
                Layer::Dropout,
                Layer::Residual { width },
            ]);
        }
        layers.extend([
            norm,
            match pool {
                VitPool::Mean => Layer::TokenMean { tokens, dim: d },
                VitPool::Class => Layer::FirstToken { tokens, dim: d },
            },
            Layer::Dense {
                inputs: d,
                outputs: classes,
            },
        ]);
        Ok(Arch {
            inputs: image.features(),
            layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_vit_on_mnist_has_sixteen_tokens_and_chains() {
        let mnist = ImageShape::square(784).unwrap();
        let arch = Arch::vit(mnist, &VitSpec::default(), 10).unwrap();
        assert!(arch.is_consistent());
        // Patch embedding 49·64 + 64, positions 16·64, per block 2 LayerNorms (4·64),
        // qkv 64·192 + 192, out 64·64 + 64, MLP 64·128 + 128 + 128·64 + 64; final LN and
        // the classifier 64·10 + 10.
        let block = 4 * 64 + (64 * 192 + 192) + (64 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64);
        let want = (49 * 64 + 64) + 16 * 64 + 2 * block + 2 * 64 + (64 * 10 + 10);
        assert_eq!(arch.trainable_params(), want);
        assert_eq!(arch.param_count(), want, "no running statistics");
    }

    #[test]
    fn a_class_token_adds_one_token_and_its_vector() {
        let mnist = ImageShape::square(784).unwrap();
        let mean = Arch::vit(mnist, &VitSpec::default(), 10).unwrap();
        let spec = VitSpec {
            pool: VitPool::Class,
            ..VitSpec::default()
        };
        let cls = Arch::vit(mnist, &spec, 10).unwrap();
        assert!(cls.is_consistent());
        // The class token (64) and one more position embedding (64).
        assert_eq!(cls.trainable_params(), mean.trainable_params() + 2 * 64);
        assert!(cls.layers.contains(&Layer::FirstToken {
            tokens: 17,
            dim: 64
        }));
    }

    #[test]
    fn impossible_shapes_say_why() {
        let mnist = ImageShape::square(784).unwrap();
        let odd = VitSpec {
            heads: 3,
            ..VitSpec::default()
        };
        assert_eq!(
            Arch::vit(mnist, &odd, 10).unwrap_err(),
            "heads 3 does not divide d_model 64"
        );
        let patch = VitSpec {
            patch: 5,
            ..VitSpec::default()
        };
        let e = Arch::vit(mnist, &patch, 10).unwrap_err();
        assert!(e.contains("patch 5 does not divide the 28×28 image"), "{e}");
        let none = VitSpec {
            heads: 0,
            ..VitSpec::default()
        };
        assert!(Arch::vit(mnist, &none, 10)
            .unwrap_err()
            .contains("at least 1"));
    }
}
