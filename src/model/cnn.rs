//! The convolutional family as a layer list, built by the rules of thumb practitioners
//! tune around: `layers` 3×3 (or `kernel_size`) convolutions with `same` padding and an
//! activation each (with `batch_norm`, a batch normalisation between the two), a 2×2
//! max-pool after every `pool_every` of them, the filters
//! multiplied by `filter_growth` after each pool, then flatten (or global average
//! pooling), `fc_layers` dense layers of `fc_width` (each with dropout after its
//! activation), and the classifier.

use super::hparams::Activation;
use super::layers::{Arch, Conv2d, Layer, Norm, Pool};
pub use crate::data::ImageShape;

/// The shape knobs of a CNN (each may also be tuned per trial).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CnnSpec {
    /// Filters of the first convolution.
    pub filters: usize,
    /// Convolutions.
    pub layers: usize,
    pub kernel_size: usize,
    /// A 2×2 max-pool after every this many convolutions.
    pub pool_every: usize,
    /// The filters' factor after each pool.
    pub filter_growth: usize,
    pub fc_layers: usize,
    pub fc_width: usize,
    /// Global average pooling instead of flattening before the dense layers.
    pub global_pool: bool,
    /// Batch normalisation after every convolution, before its activation.
    pub batch_norm: bool,
    /// Spatial dropout (whole channels, at the member's dropout rate) after every
    /// convolution's activation.
    pub spatial_dropout: bool,
}

impl Default for CnnSpec {
    /// Two 3×3 convolutions of 32 then 64 filters, each pooled, one dense layer of 128.
    fn default() -> Self {
        CnnSpec {
            filters: 32,
            layers: 2,
            kernel_size: 3,
            pool_every: 1,
            filter_growth: 2,
            fc_layers: 1,
            fc_width: 128,
            global_pool: false,
            batch_norm: false,
            spatial_dropout: false,
        }
    }
}

impl Arch {
    /// The CNN `spec` describes over `image`, ending in `classes` outputs; or why that
    /// configuration cannot be built (a kernel larger than its input, an image pooled
    /// below one pixel).
    pub fn cnn(
        image: ImageShape,
        spec: &CnnSpec,
        activation: Activation,
        classes: usize,
    ) -> Result<Arch, String> {
        if spec.filters == 0 || spec.layers == 0 || spec.kernel_size == 0 || spec.pool_every == 0 {
            return Err(format!(
                "filters, layers, kernel_size and pool_every must be at least 1 (got {}, {}, {}, {})",
                spec.filters, spec.layers, spec.kernel_size, spec.pool_every
            ));
        }
        let mut layers = Vec::new();
        let (mut channels, mut h, mut w) = (image.channels, image.height, image.width);
        let mut filters = spec.filters;
        let k = spec.kernel_size;
        for i in 1..=spec.layers {
            if k > h || k > w {
                return Err(format!(
                    "kernel_size {k} is larger than the {h}×{w} input of convolution {i} \
                     (layers {}, pool_every {})",
                    spec.layers, spec.pool_every
                ));
            }
            let conv = Conv2d {
                in_channels: channels,
                out_channels: filters,
                kernel: k,
                stride: 1,
                pad: (k - 1) / 2,
                height: h,
                width: w,
            };
            layers.push(Layer::Conv2d(conv));
            (channels, h, w) = (filters, conv.out_height(), conv.out_width());
            if spec.batch_norm {
                let spatial = h * w;
                layers.push(Layer::BatchNorm(Norm { channels, spatial }));
            }
            layers.push(Layer::Activation(activation));
            if spec.spatial_dropout {
                layers.push(Layer::SpatialDropout { channels });
            }
            if i % spec.pool_every == 0 {
                if h < 2 || w < 2 {
                    return Err(format!(
                        "a 2×2 pool after convolution {i} would take the {h}×{w} image below \
                         one pixel (layers {}, pool_every {})",
                        spec.layers, spec.pool_every
                    ));
                }
                let pool = Pool {
                    channels,
                    size: 2,
                    height: h,
                    width: w,
                };
                layers.push(Layer::MaxPool(pool));
                (h, w) = (pool.out_height(), pool.out_width());
                filters = filters.saturating_mul(spec.filter_growth.max(1));
            }
        }
        let mut width = channels * h * w;
        if spec.global_pool {
            layers.push(Layer::GlobalAvgPool(Pool {
                channels,
                size: 1,
                height: h,
                width: w,
            }));
            width = channels;
        }
        for _ in 0..spec.fc_layers {
            layers.push(Layer::Dense {
                inputs: width,
                outputs: spec.fc_width,
            });
            layers.push(Layer::Activation(activation));
            layers.push(Layer::Dropout);
            width = spec.fc_width;
        }
        if spec.fc_layers == 0 {
            layers.push(Layer::Dropout);
        }
        layers.push(Layer::Dense {
            inputs: width,
            outputs: classes,
        });
        Ok(Arch {
            inputs: image.features(),
            layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: ImageShape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };

    #[test]
    fn the_default_doubles_filters_after_each_pool() {
        let arch = Arch::cnn(MNIST, &CnnSpec::default(), Activation::Relu, 10).unwrap();
        assert!(arch.is_consistent());
        let convs: Vec<(usize, usize, usize)> = arch
            .layers
            .iter()
            .filter_map(|l| match l {
                Layer::Conv2d(c) => Some((c.in_channels, c.out_channels, c.height)),
                _ => None,
            })
            .collect();
        assert_eq!(convs, [(1, 32, 28), (32, 64, 14)]);
        // 64 × 7 × 7 flattened into the dense layer of 128.
        assert!(arch.layers.contains(&Layer::Dense {
            inputs: 64 * 7 * 7,
            outputs: 128
        }));
        let params = (9 * 32 + 32) + (32 * 9 * 64 + 64) + (3136 * 128 + 128) + (128 * 10 + 10);
        assert_eq!(arch.param_count(), params);
    }

    #[test]
    fn impossible_geometries_say_which_and_why() {
        let tiny = ImageShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let deep = CnnSpec {
            layers: 4,
            kernel_size: 1,
            ..CnnSpec::default()
        };
        let e = Arch::cnn(tiny, &deep, Activation::Relu, 10).unwrap_err();
        assert!(
            e.contains("after convolution 4") && e.contains("1×1"),
            "{e}"
        );
        let wide = CnnSpec {
            kernel_size: 5,
            layers: 3,
            ..CnnSpec::default()
        };
        let e = Arch::cnn(tiny, &wide, Activation::Relu, 10).unwrap_err();
        assert!(
            e.contains("kernel_size 5 is larger than the 4×4 input of convolution 2"),
            "{e}"
        );
        let global = CnnSpec {
            layers: 3,
            pool_every: 3,
            global_pool: true,
            fc_layers: 0,
            ..CnnSpec::default()
        };
        let arch = Arch::cnn(tiny, &global, Activation::Relu, 10).unwrap();
        assert!(arch.is_consistent());
        assert!(arch.layers.contains(&Layer::Dense {
            inputs: 32,
            outputs: 10
        }));
    }
}
