//! The built-in model's tunable knobs: their names in a sweep file, their valid ranges, and
//! how one trial's parameters (plus the sweep's defaults) become a [`MemberSpec`].

use super::cnn::{CnnSpec, ImageShape};
use super::vit::VitSpec;
use super::{Arch, Hparams, MemberSpec};
use crate::model::hparams::Activation;
use crate::model::hparams::Augment;
use crate::model::hparams::{LrSchedule, OptimHparams, OptimizerKind};
use crate::space::{ParamValue, Params};
use std::collections::BTreeMap;

/// The deepest MLP the built-in model accepts (hidden layers).
pub const MAX_DEPTH: usize = 8;
/// The largest translation (pixels) the `shift` augmentation accepts.
pub const MAX_SHIFT: usize = 8;
/// The widest hidden layer the built-in model accepts.
pub const MAX_WIDTH: usize = 65_536;

/// Whether a knob takes integers or reals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobKind {
    Int,
    Float,
    /// One of these names (a categorical parameter of strings).
    Choice(&'static [&'static str]),
}

/// A model family, which a knob may shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Mlp,
    Cnn,
    /// Vision transformers.
    Vit,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Mlp => "mlp",
            Family::Cnn => "cnn",
            Family::Vit => "vit",
        }
    }
}

/// What a parameter of a built-in sweep tunes: the sweep file's names, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KnobName {
    BatchSize,
    Noise,
    Shift,
    Activation,
    Optimizer,
    Lr,
    Momentum,
    WeightDecay,
    L1,
    Dropout,
    Depth,
    Width,
    /// `width_<k>`: the width of an MLP's hidden layer `k` (1-based), overriding `width`.
    LayerWidth(usize),
    Filters,
    Layers,
    KernelSize,
    PoolEvery,
    FcLayers,
    FcWidth,
    Patch,
    DModel,
    Heads,
    /// A transformer's width per head: `d_model = heads · head_dim`, so that every pair a
    /// sampler proposes is valid.
    HeadDim,
    MlpRatio,
    /// Dropout on a transformer's attention weights.
    AttnDropout,
}

impl KnobName {
    /// The knob a parameter name refers to.
    pub fn parse(name: &str) -> Option<KnobName> {
        match name.strip_prefix("width_").map(str::parse::<usize>) {
            Some(Ok(k)) if (1..=MAX_DEPTH).contains(&k) => Some(KnobName::LayerWidth(k)),
            Some(_) => None,
            None => KNOBS.iter().find(|k| k.name == name).map(|k| k.id),
        }
    }

    /// Whether PBT's explore must leave it alone: the architecture (the copied weights were
    /// trained through it), the activation (likewise) and the optimizer (its copied state
    /// would mean something else).
    pub fn fixed_for_life(self) -> bool {
        let knob = match self {
            KnobName::LayerWidth(_) => return true,
            id => KNOBS
                .iter()
                .find(|k| k.id == id)
                .expect("every name has its knob"),
        };
        !knob.families.is_empty() || matches!(self, KnobName::Activation | KnobName::Optimizer)
    }
}

/// One tunable knob and the values it accepts.
pub struct Knob {
    pub name: &'static str,
    pub id: KnobName,
    pub kind: KnobKind,
    /// The families whose shape it sets; none for a training knob, which every family has.
    pub families: &'static [Family],
    /// The valid range in words, for error messages.
    pub range: &'static str,
    pub accepts: fn(f64) -> bool,
}

impl Knob {
    /// Whether a sweep of `family` may tune it.
    pub fn tunes(&self, family: Family) -> bool {
        self.families.is_empty() || self.families.contains(&family)
    }
}

/// The most convolutions a CNN accepts, and its largest kernel and filter count.
pub const MAX_CONV_LAYERS: usize = 16;
pub const MAX_KERNEL: usize = 15;
pub const MAX_FILTERS: usize = 4096;

pub const KNOBS: [Knob; 24] = [
    Knob {
        name: "batch_size",
        id: KnobName::BatchSize,
        families: &[],
        kind: KnobKind::Int,
        range: "1..=65536",
        accepts: |x| (1.0..=65_536.0).contains(&x),
    },
    Knob {
        name: "noise",
        id: KnobName::Noise,
        families: &[],
        kind: KnobKind::Float,
        range: "[0, ∞)",
        accepts: |x| x >= 0.0 && x.is_finite(),
    },
    Knob {
        name: "shift",
        id: KnobName::Shift,
        families: &[],
        kind: KnobKind::Int,
        range: "0..=8",
        accepts: |x| (0.0..=MAX_SHIFT as f64).contains(&x),
    },
    Knob {
        name: "activation",
        id: KnobName::Activation,
        families: &[],
        kind: KnobKind::Choice(&Activation::NAMES),
        range: "relu, leaky_relu, tanh, gelu",
        accepts: |_| true,
    },
    Knob {
        name: "optimizer",
        id: KnobName::Optimizer,
        families: &[],
        kind: KnobKind::Choice(&OptimizerKind::NAMES),
        range: "sgd, adamw",
        accepts: |_| true,
    },
    Knob {
        name: "lr",
        id: KnobName::Lr,
        families: &[],
        kind: KnobKind::Float,
        range: "(0, ∞)",
        accepts: |x| x > 0.0 && x.is_finite(),
    },
    Knob {
        name: "momentum",
        id: KnobName::Momentum,
        families: &[],
        kind: KnobKind::Float,
        range: "[0, 1)",
        accepts: |x| (0.0..1.0).contains(&x),
    },
    Knob {
        name: "weight_decay",
        id: KnobName::WeightDecay,
        families: &[],
        kind: KnobKind::Float,
        range: "[0, ∞)",
        accepts: |x| x >= 0.0 && x.is_finite(),
    },
    Knob {
        name: "l1",
        id: KnobName::L1,
        families: &[],
        kind: KnobKind::Float,
        range: "[0, ∞)",
        accepts: |x| x >= 0.0 && x.is_finite(),
    },
    Knob {
        name: "dropout",
        id: KnobName::Dropout,
        families: &[],
        kind: KnobKind::Float,
        range: "[0, 1)",
        accepts: |x| (0.0..1.0).contains(&x),
    },
    Knob {
        name: "depth",
        id: KnobName::Depth,
        families: &[Family::Mlp],
        kind: KnobKind::Int,
        range: "1..=8",
        accepts: |x| (1.0..=MAX_DEPTH as f64).contains(&x),
    },
    Knob {
        name: "width",
        id: KnobName::Width,
        families: &[Family::Mlp],
        kind: KnobKind::Int,
        range: "1..=65536",
        accepts: |x| (1.0..=MAX_WIDTH as f64).contains(&x),
    },
    Knob {
        name: "filters",
        id: KnobName::Filters,
        families: &[Family::Cnn],
        kind: KnobKind::Int,
        range: "1..=4096",
        accepts: |x| (1.0..=MAX_FILTERS as f64).contains(&x),
    },
    Knob {
        name: "layers",
        id: KnobName::Layers,
        families: &[Family::Cnn, Family::Vit],
        kind: KnobKind::Int,
        range: "1..=16",
        accepts: |x| (1.0..=MAX_CONV_LAYERS as f64).contains(&x),
    },
    Knob {
        name: "kernel_size",
        id: KnobName::KernelSize,
        families: &[Family::Cnn],
        kind: KnobKind::Int,
        range: "1..=15",
        accepts: |x| (1.0..=MAX_KERNEL as f64).contains(&x),
    },
    Knob {
        name: "pool_every",
        id: KnobName::PoolEvery,
        families: &[Family::Cnn],
        kind: KnobKind::Int,
        range: "1..=16",
        accepts: |x| (1.0..=MAX_CONV_LAYERS as f64).contains(&x),
    },
    Knob {
        name: "fc_layers",
        id: KnobName::FcLayers,
        families: &[Family::Cnn],
        kind: KnobKind::Int,
        range: "0..=8",
        accepts: |x| (0.0..=MAX_DEPTH as f64).contains(&x),
    },
    Knob {
        name: "fc_width",
        id: KnobName::FcWidth,
        families: &[Family::Cnn],
        kind: KnobKind::Int,
        range: "1..=65536",
        accepts: |x| (1.0..=MAX_WIDTH as f64).contains(&x),
    },
    Knob {
        name: "patch",
        id: KnobName::Patch,
        families: &[Family::Vit],
        kind: KnobKind::Int,
        range: "1..=64",
        accepts: |x| (1.0..=64.0).contains(&x),
    },
    Knob {
        name: "d_model",
        id: KnobName::DModel,
        families: &[Family::Vit],
        kind: KnobKind::Int,
        range: "1..=4096",
        accepts: |x| (1.0..=4096.0).contains(&x),
    },
    Knob {
        name: "heads",
        id: KnobName::Heads,
        families: &[Family::Vit],
        kind: KnobKind::Int,
        range: "1..=64",
        accepts: |x| (1.0..=64.0).contains(&x),
    },
    Knob {
        name: "head_dim",
        id: KnobName::HeadDim,
        families: &[Family::Vit],
        kind: KnobKind::Int,
        range: "1..=1024",
        accepts: |x| (1.0..=1024.0).contains(&x),
    },
    Knob {
        name: "attn_dropout",
        id: KnobName::AttnDropout,
        families: &[Family::Vit],
        kind: KnobKind::Float,
        range: "[0, 1)",
        accepts: |x| (0.0..1.0).contains(&x),
    },
    Knob {
        name: "mlp_ratio",
        id: KnobName::MlpRatio,
        families: &[Family::Vit],
        kind: KnobKind::Int,
        range: "1..=8",
        accepts: |x| (1.0..=8.0).contains(&x),
    },
];

/// The knob a parameter name refers to: one of [`KNOBS`], or `width_<k>` (the width of an
/// MLP's hidden layer `k`, 1-based, overriding `width`), which shares `width`'s range.
pub fn knob(name: &str) -> Option<&'static Knob> {
    let id = match KnobName::parse(name)? {
        KnobName::LayerWidth(_) => KnobName::Width,
        id => id,
    };
    KNOBS.iter().find(|k| k.id == id)
}

/// Values of every knob a trial does not tune (from the sweep's `model` and `train`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnobDefaults {
    pub activation: Activation,
    pub optimizer: OptimizerKind,
    pub nesterov: bool,
    pub schedule: LrSchedule,
    pub l1: f64,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub dropout: f64,
    /// Dropout on a transformer's attention weights.
    pub attn_dropout: f64,
    /// Input augmentation: Gaussian noise's standard deviation and the largest shift.
    pub noise: f64,
    pub shift: usize,
    /// Mirror images left to right at random (off by default: wrong for digits).
    pub flip: bool,
    pub depth: usize,
    pub width: usize,
    /// The model family: an MLP (`depth`, `width`), a CNN or a vision transformer of
    /// this shape (at most one of the two is set).
    pub cnn: Option<CnnDefaults>,
    pub vit: Option<VitDefaults>,
}

/// A CNN sweep's defaults: its shape, and its input images' shape when the data does not
/// say (`None`: square one-channel images).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CnnDefaults {
    pub spec: CnnSpec,
    pub image: Option<ImageShape>,
}

/// A vision-transformer sweep's defaults: its shape, `head_dim` when the width is given
/// per head (`d_model = heads · head_dim`), and its images' shape when the data does not
/// say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VitDefaults {
    pub spec: VitSpec,
    pub head_dim: Option<usize>,
    pub image: Option<ImageShape>,
}

impl KnobDefaults {
    pub fn family(&self) -> Family {
        match (self.cnn, self.vit) {
            (Some(_), _) => Family::Cnn,
            (None, Some(_)) => Family::Vit,
            (None, None) => Family::Mlp,
        }
    }

    /// The images an image model reads (`None` for an MLP), as far as the sweep says.
    pub fn image(&self) -> Option<Option<ImageShape>> {
        self.cnn.map(|c| c.image).or(self.vit.map(|v| v.image))
    }

    /// Sets the image shape of an image model that has none yet.
    pub fn default_image(&mut self, image: Option<ImageShape>) {
        if let Some(cnn) = &mut self.cnn {
            cnn.image = cnn.image.or(image);
        }
        if let Some(vit) = &mut self.vit {
            vit.image = vit.image.or(image);
        }
    }
}

impl Default for KnobDefaults {
    /// SGD with lr 0.05, momentum 0.9, no weight decay, no dropout, two hidden layers of 128.
    fn default() -> Self {
        KnobDefaults {
            activation: Activation::Relu,
            optimizer: OptimizerKind::Sgd,
            nesterov: false,
            schedule: LrSchedule::CONSTANT,
            l1: 0.0,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
            dropout: 0.0,
            attn_dropout: 0.0,
            noise: 0.0,
            shift: 0,
            flip: false,
            depth: 2,
            width: 128,
            cnn: None,
            vit: None,
        }
    }
}

/// The image shape of rows of `inputs` features: the sweep's (or the data's), which must
/// match, or else a square one-channel image.
fn image_rows(image: Option<ImageShape>, inputs: usize, model: &str) -> Result<ImageShape, String> {
    let image = image
        .or_else(|| ImageShape::square(inputs))
        .ok_or_else(|| {
            format!(
                "a {model} needs image rows: {inputs} features are not a square image; give \
             data.shape: [C, H, W]"
            )
        })?;
    if image.features() != inputs {
        return Err(format!(
            "data.shape {}×{}×{} is {} features, but the rows have {inputs}",
            image.channels,
            image.height,
            image.width,
            image.features()
        ));
    }
    Ok(image)
}

/// The member a trial trains, or why its architecture cannot be built on rows of `inputs`
/// features (a CNN whose kernels or pools do not fit the image). `params` must already be
/// validated against [`KNOBS`].
pub fn member_spec(
    params: &Params,
    defaults: &KnobDefaults,
    inputs: usize,
    classes: usize,
    seed: u64,
) -> Result<MemberSpec, String> {
    let tuned: BTreeMap<KnobName, &ParamValue> = params
        .iter()
        .filter_map(|(name, v)| Some((KnobName::parse(name)?, v)))
        .collect();
    let number =
        |knob: KnobName, default: f64| tuned.get(&knob).and_then(|v| v.as_f64()).unwrap_or(default);
    let activation = match tuned.get(&KnobName::Activation) {
        Some(ParamValue::Str(name)) => {
            Activation::parse(name).expect("validated against the knob's choices")
        }
        _ => defaults.activation,
    };
    let optimizer = match tuned.get(&KnobName::Optimizer) {
        Some(ParamValue::Str(name)) => {
            OptimizerKind::parse(name).expect("validated against the knob's choices")
        }
        _ => defaults.optimizer,
    };
    let int = |knob: KnobName, default: usize| number(knob, default as f64) as usize;
    let arch = match (defaults.cnn, defaults.vit) {
        (Some(cnn), _) => {
            let image = image_rows(cnn.image, inputs, "CNN")?;
            let d = cnn.spec;
            let spec = CnnSpec {
                filters: int(KnobName::Filters, d.filters),
                layers: int(KnobName::Layers, d.layers),
                kernel_size: int(KnobName::KernelSize, d.kernel_size),
                pool_every: int(KnobName::PoolEvery, d.pool_every),
                fc_layers: int(KnobName::FcLayers, d.fc_layers),
                fc_width: int(KnobName::FcWidth, d.fc_width),
                ..d
            };
            Arch::cnn(image, &spec, activation, classes)?
        }
        (None, Some(vit)) => {
            let image = image_rows(vit.image, inputs, "vision transformer")?;
            let d = vit.spec;
            let heads = int(KnobName::Heads, d.heads);
            let head_dim = tuned
                .get(&KnobName::HeadDim)
                .and_then(|v| v.as_f64())
                .map(|h| h as usize)
                .or(vit.head_dim);
            let spec = VitSpec {
                patch: int(KnobName::Patch, d.patch),
                heads,
                d_model: head_dim.map_or_else(|| int(KnobName::DModel, d.d_model), |h| heads * h),
                layers: int(KnobName::Layers, d.layers),
                mlp_ratio: int(KnobName::MlpRatio, d.mlp_ratio),
                pool: d.pool,
            };
            Arch::vit(image, &spec, classes)?
        }
        (None, None) => {
            let depth = number(KnobName::Depth, defaults.depth as f64) as usize;
            let width = number(KnobName::Width, defaults.width as f64);
            let hidden: Vec<usize> = (1..=depth)
                .map(|k| number(KnobName::LayerWidth(k), width) as usize)
                .collect();
            Arch::mlp(inputs, &hidden, classes).with_activation(activation)
        }
    };
    Ok(MemberSpec {
        arch,
        hparams: Hparams {
            optim: OptimHparams {
                kind: optimizer,
                momentum: number(KnobName::Momentum, defaults.momentum) as f32,
                // Nesterov's look-ahead is SGD's; an AdamW member of a sweep that tunes
                // the optimizer runs without it.
                nesterov: defaults.nesterov && optimizer == OptimizerKind::Sgd,
                l1: number(KnobName::L1, defaults.l1) as f32,
                schedule: defaults.schedule,
                ..OptimHparams::sgd(
                    number(KnobName::Lr, defaults.lr) as f32,
                    0.0,
                    number(KnobName::WeightDecay, defaults.weight_decay) as f32,
                )
            },
            dropout: number(KnobName::Dropout, defaults.dropout) as f32,
            attn_dropout: number(KnobName::AttnDropout, defaults.attn_dropout) as f32,
            augment: Augment {
                noise: number(KnobName::Noise, defaults.noise) as f32,
                shift: number(KnobName::Shift, defaults.shift as f64) as u32,
                flip: defaults.flip,
            },
            batch_size: tuned
                .get(&KnobName::BatchSize)
                .and_then(|v| v.as_f64())
                .map(|b| b as usize),
        },
        seed,
        fold: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::ParamValue;

    #[test]
    fn per_layer_widths_override_width() {
        let mut params = Params::new();
        params.insert("depth".into(), ParamValue::Int(3));
        params.insert("width".into(), ParamValue::Int(32));
        params.insert("width_2".into(), ParamValue::Int(7));
        params.insert("lr".into(), ParamValue::Float(0.2));
        let spec = member_spec(&params, &KnobDefaults::default(), 64, 10, 1).unwrap();
        assert_eq!(spec.arch.dense_widths(), vec![64, 32, 7, 32, 10]);
        assert_eq!(spec.hparams.optim.lr, 0.2);
        assert_eq!(spec.hparams.optim.momentum, 0.9);
    }

    #[test]
    fn the_optimizer_is_a_knob_and_nesterov_stays_with_sgd() {
        let defaults = KnobDefaults {
            nesterov: true,
            ..KnobDefaults::default()
        };
        let mut params = Params::new();
        params.insert("optimizer".into(), ParamValue::Str("adamw".into()));
        let adamw = member_spec(&params, &defaults, 64, 10, 1)
            .unwrap()
            .hparams
            .optim;
        assert_eq!(adamw.kind, OptimizerKind::AdamW);
        assert!(!adamw.nesterov);
        params.insert("optimizer".into(), ParamValue::Str("sgd".into()));
        let sgd = member_spec(&params, &defaults, 64, 10, 1)
            .unwrap()
            .hparams
            .optim;
        assert_eq!((sgd.kind, sgd.nesterov), (OptimizerKind::Sgd, true));
        let untuned = member_spec(&Params::new(), &KnobDefaults::default(), 64, 10, 1).unwrap();
        assert_eq!(untuned.hparams.optim.kind, OptimizerKind::Sgd);
    }

    #[test]
    fn knob_names_parse_to_their_typed_names_and_pbt_keeps_the_shape_ones() {
        assert_eq!(KnobName::parse("lr"), Some(KnobName::Lr));
        assert_eq!(KnobName::parse("width_3"), Some(KnobName::LayerWidth(3)));
        assert_eq!(KnobName::parse("kernel_size"), Some(KnobName::KernelSize));
        assert_eq!(KnobName::parse("width_9"), None, "deeper than MAX_DEPTH");
        assert_eq!(KnobName::parse("learning_rate"), None);
        for fixed in [
            "depth",
            "width_2",
            "filters",
            "kernel_size",
            "activation",
            "optimizer",
        ] {
            assert!(KnobName::parse(fixed).unwrap().fixed_for_life(), "{fixed}");
        }
        for free in ["lr", "dropout", "weight_decay", "batch_size", "shift"] {
            assert!(!KnobName::parse(free).unwrap().fixed_for_life(), "{free}");
        }
        // Every knob of the table round-trips through its name.
        assert!(KNOBS.iter().all(|k| KnobName::parse(k.name) == Some(k.id)));
    }

    #[test]
    fn knob_names_are_recognised() {
        assert!(knob("lr").is_some());
        assert_eq!(knob("width_3").map(|k| k.name), Some("width"));
        assert!(knob("width_0").is_none());
        assert!(knob("width_x").is_none());
        assert!(knob("learning_rate").is_none());
    }
}
