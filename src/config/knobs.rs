//! The built-in model's keys (`model`, `train`) as defaults, and the knobs a search space
//! may tune, checked against what each knob accepts.

use super::raw::{RawModel, RawSchedule, RawTrain};
use super::Ctx;
use crate::error::{Error, Result};
use crate::model::cnn::{CnnSpec, ImageShape};
use crate::model::hparams::{Activation, Decay, LrSchedule, OptimizerKind};
use crate::model::knobs::{knob, CnnDefaults, Family, KnobDefaults, KnobKind, VitDefaults, KNOBS};
use crate::model::vit::{VitPool, VitSpec};
use crate::space::transform::from_unit;
use crate::space::{Distribution, ParamValue, Space, SpaceError};

fn kind_word(kind: KnobKind) -> &'static str {
    match kind {
        KnobKind::Int => "integer",
        KnobKind::Float => "numeric",
        KnobKind::Choice(_) => "named",
    }
}

impl Ctx<'_> {
    /// The knobs' values where a trial does not tune them; `epochs` is the full budget (a
    /// cosine schedule decays over it).
    pub(super) fn defaults(
        &self,
        model: Option<&RawModel>,
        train: Option<&RawTrain>,
        epochs_for_schedule: usize,
        image: Option<ImageShape>,
    ) -> Result<KnobDefaults> {
        let (cnn, vit) = self.family(model, image)?;
        let base = KnobDefaults::default();
        let activation = match model.and_then(|m| m.activation.as_deref()) {
            None => base.activation,
            Some(name) => Activation::parse(name).ok_or_else(|| {
                self.err(
                    &["model", "activation"],
                    format!(
                        "unknown activation `{name}` (expected {})",
                        Activation::NAMES.join(", ")
                    ),
                )
            })?,
        };
        let check = |section: &str, name: &str, value: Option<f64>, default: f64| -> Result<f64> {
            let Some(v) = value else { return Ok(default) };
            let knob = knob(name).expect("defaults are named after knobs");
            if (knob.accepts)(v) {
                Ok(v)
            } else {
                Err(self.err(
                    &[section, name],
                    format!("{v} is outside the valid range {} of {name}", knob.range),
                ))
            }
        };
        let as_f64 = |v: Option<u64>| v.map(|x| x as f64);
        let optimizer = match train.and_then(|t| t.optimizer.as_deref()) {
            None => base.optimizer,
            Some(name) => OptimizerKind::parse(name).ok_or_else(|| {
                self.err(
                    &["train", "optimizer"],
                    format!("unknown optimizer `{name}` (expected sgd or adamw)"),
                )
            })?,
        };
        let nesterov = train.and_then(|t| t.nesterov).unwrap_or(false);
        if nesterov && optimizer != OptimizerKind::Sgd {
            return Err(self.err(
                &["train", "nesterov"],
                "Nesterov momentum is an SGD option; AdamW has none".into(),
            ));
        }
        let schedule = match train.and_then(|t| t.lr_schedule.as_ref()) {
            None => LrSchedule::CONSTANT,
            Some(raw) => self.lr_schedule(raw, epochs_for_schedule)?,
        };
        Ok(KnobDefaults {
            activation,
            optimizer,
            nesterov,
            schedule,
            l1: check("train", "l1", train.and_then(|t| t.l1), base.l1)?,
            noise: check("train", "noise", train.and_then(|t| t.noise), base.noise)?,
            flip: train.and_then(|t| t.flip).unwrap_or(false),
            shift: check(
                "train",
                "shift",
                as_f64(train.and_then(|t| t.shift)),
                base.shift as f64,
            )? as usize,
            lr: check("train", "lr", train.and_then(|t| t.lr), base.lr)?,
            momentum: check(
                "train",
                "momentum",
                train.and_then(|t| t.momentum),
                base.momentum,
            )?,
            weight_decay: check(
                "train",
                "weight_decay",
                train.and_then(|t| t.weight_decay),
                base.weight_decay,
            )?,
            dropout: check(
                "train",
                "dropout",
                train.and_then(|t| t.dropout),
                base.dropout,
            )?,
            attn_dropout: self.attn_dropout(model, train, base.attn_dropout)?,
            depth: check(
                "model",
                "depth",
                as_f64(model.and_then(|m| m.depth)),
                base.depth as f64,
            )? as usize,
            width: check(
                "model",
                "width",
                as_f64(model.and_then(|m| m.width)),
                base.width as f64,
            )? as usize,
            cnn,
            vit,
        })
    }

    /// `model.type`: an MLP (neither), a CNN or a vision transformer with its shape; keys
    /// of another family are refused.
    fn family(
        &self,
        model: Option<&RawModel>,
        image: Option<ImageShape>,
    ) -> Result<(Option<CnnDefaults>, Option<VitDefaults>)> {
        let family = match model.and_then(|m| m.kind.as_deref()) {
            None | Some("mlp") => Family::Mlp,
            Some("cnn") => Family::Cnn,
            Some("vit") => Family::Vit,
            Some(kind) => {
                return Err(self.err(
                    &["model", "type"],
                    format!("model type `{kind}` is not supported yet (supported: mlp, cnn, vit)"),
                ))
            }
        };
        if let Some(m) = model {
            self.refuse_keys_not_of(family, m)?;
        }
        Ok(match family {
            Family::Cnn => (
                Some(CnnDefaults {
                    spec: self.cnn_spec(model)?,
                    image,
                }),
                None,
            ),
            Family::Vit => (None, Some(self.vit_defaults(model, image)?)),
            Family::Mlp => (None, None),
        })
    }

    /// `train.attn_dropout`, which only a vision transformer has.
    fn attn_dropout(
        &self,
        model: Option<&RawModel>,
        train: Option<&RawTrain>,
        default: f64,
    ) -> Result<f64> {
        let Some(rate) = train.and_then(|t| t.attn_dropout) else {
            return Ok(default);
        };
        let at = ["train", "attn_dropout"];
        if model.and_then(|m| m.kind.as_deref()) != Some("vit") {
            return Err(self.err(&at, "attention dropout needs model.type vit".into()));
        }
        match (0.0..1.0).contains(&rate) {
            true => Ok(rate),
            false => Err(self.err(&at, format!("{rate} is outside the valid range [0, 1)"))),
        }
    }

    /// An integer `model:` key named after its knob, checked against the knob's range.
    fn model_int(&self, name: &str, value: Option<u64>, default: usize) -> Result<usize> {
        let Some(v) = value else { return Ok(default) };
        let knob = knob(name).expect("model keys are named after knobs");
        match (knob.accepts)(v as f64) {
            true => Ok(v as usize),
            false => Err(self.err(
                &["model", name],
                format!("{v} is outside the valid range {} of {name}", knob.range),
            )),
        }
    }

    /// `model:`'s vision-transformer keys over [`VitSpec::default`]; `head_dim` (the width
    /// per head) and `d_model` exclude each other.
    fn vit_defaults(
        &self,
        model: Option<&RawModel>,
        image: Option<ImageShape>,
    ) -> Result<VitDefaults> {
        let base = VitSpec::default();
        let get = |f: fn(&RawModel) -> Option<u64>| model.and_then(f);
        let head_dim = match get(|m| m.head_dim) {
            None => None,
            Some(_) if get(|m| m.d_model).is_some() => {
                return Err(self.err(
                    &["model", "head_dim"],
                    "give d_model or head_dim (d_model = heads · head_dim), not both".into(),
                ))
            }
            Some(h) => Some(self.model_int("head_dim", Some(h), 0)?),
        };
        let spec = VitSpec {
            patch: self.model_int("patch", get(|m| m.patch), base.patch)?,
            d_model: self.model_int("d_model", get(|m| m.d_model), base.d_model)?,
            heads: self.model_int("heads", get(|m| m.heads), base.heads)?,
            layers: self.model_int("layers", get(|m| m.layers), base.layers)?,
            mlp_ratio: self.model_int("mlp_ratio", get(|m| m.mlp_ratio), base.mlp_ratio)?,
            pool: match model.and_then(|m| m.pool.as_deref()) {
                None => base.pool,
                Some(name) => VitPool::parse(name).ok_or_else(|| {
                    self.err(
                        &["model", "pool"],
                        format!("unknown pool `{name}` (expected mean or cls)"),
                    )
                })?,
            },
        };
        Ok(VitDefaults {
            spec,
            head_dim,
            image,
        })
    }

    /// `model:`'s CNN keys over [`CnnSpec::default`], each checked against its knob.
    fn cnn_spec(&self, model: Option<&RawModel>) -> Result<CnnSpec> {
        let base = CnnSpec::default();
        let int = |name: &str, value: Option<u64>, default: usize| -> Result<usize> {
            self.model_int(name, value, default)
        };
        let get = |f: fn(&RawModel) -> Option<u64>| model.and_then(f);
        let growth = get(|m| m.filter_growth).unwrap_or(base.filter_growth as u64);
        if !(1..=4).contains(&growth) {
            return Err(self.err(
                &["model", "filter_growth"],
                format!("{growth} is outside the valid range 1..=4 of filter_growth"),
            ));
        }
        let spec = CnnSpec {
            filters: int("filters", get(|m| m.filters), base.filters)?,
            layers: int("layers", get(|m| m.layers), base.layers)?,
            kernel_size: int("kernel_size", get(|m| m.kernel_size), base.kernel_size)?,
            pool_every: int("pool_every", get(|m| m.pool_every), base.pool_every)?,
            filter_growth: growth as usize,
            fc_layers: int("fc_layers", get(|m| m.fc_layers), base.fc_layers)?,
            fc_width: int("fc_width", get(|m| m.fc_width), base.fc_width)?,
            global_pool: model.and_then(|m| m.global_pool).unwrap_or(false),
            batch_norm: model.and_then(|m| m.batch_norm).unwrap_or(false),
            spatial_dropout: model.and_then(|m| m.spatial_dropout).unwrap_or(false),
        };
        if spec.pool_every > spec.layers {
            return Err(self.err(
                &["model", "pool_every"],
                format!(
                    "pool_every {} is larger than layers {}: no convolution would be pooled",
                    spec.pool_every, spec.layers
                ),
            ));
        }
        Ok(spec)
    }

    /// Refuses `model:` keys that shape only models of other families than `family`.
    fn refuse_keys_not_of(&self, family: Family, m: &RawModel) -> Result<()> {
        use Family::{Cnn, Mlp, Vit};
        let keys: &[(&str, &[Family], bool)] = &[
            ("depth", &[Mlp], m.depth.is_some()),
            ("width", &[Mlp], m.width.is_some()),
            ("filters", &[Cnn], m.filters.is_some()),
            ("layers", &[Cnn, Vit], m.layers.is_some()),
            ("kernel_size", &[Cnn], m.kernel_size.is_some()),
            ("pool_every", &[Cnn], m.pool_every.is_some()),
            ("filter_growth", &[Cnn], m.filter_growth.is_some()),
            ("fc_layers", &[Cnn], m.fc_layers.is_some()),
            ("fc_width", &[Cnn], m.fc_width.is_some()),
            ("global_pool", &[Cnn], m.global_pool.is_some()),
            ("batch_norm", &[Cnn], m.batch_norm.is_some()),
            ("spatial_dropout", &[Cnn], m.spatial_dropout.is_some()),
            ("patch", &[Vit], m.patch.is_some()),
            ("d_model", &[Vit], m.d_model.is_some()),
            ("heads", &[Vit], m.heads.is_some()),
            ("head_dim", &[Vit], m.head_dim.is_some()),
            ("mlp_ratio", &[Vit], m.mlp_ratio.is_some()),
            ("pool", &[Vit], m.pool.is_some()),
        ];
        let stray = keys
            .iter()
            .find(|(_, of, set)| *set && !of.contains(&family));
        match stray {
            Some((key, of, _)) => {
                let names: Vec<&str> = of.iter().map(|f| f.name()).collect();
                Err(self.err(
                    &["model", key],
                    format!(
                        "`{key}` shapes a {} model; this sweep's model.type is {}",
                        names.join(" or "),
                        family.name()
                    ),
                ))
            }
            None => Ok(()),
        }
    }

    /// `train.lr_schedule`: a linear warm-up (`warmup_epochs`, default 0) then `constant`,
    /// `step` (× `gamma`, default 0.1, every `step_epochs`, default a third of the budget) or
    /// `cosine` (to 0 at the full budget).
    pub(super) fn lr_schedule(&self, raw: &RawSchedule, epochs: usize) -> Result<LrSchedule> {
        let at = |key: &'static str| ["train", "lr_schedule", key];
        let non_negative = |key: &'static str, v: Option<f64>, default: f64| -> Result<f32> {
            match v {
                Some(x) if !(x >= 0.0 && x.is_finite()) => {
                    Err(self.err(&at(key), format!("{x} must be a finite number ≥ 0")))
                }
                Some(x) => Ok(x as f32),
                None => Ok(default as f32),
            }
        };
        let warmup_epochs = non_negative("warmup_epochs", raw.warmup_epochs, 0.0)?;
        let decay = match raw.kind.as_str() {
            "constant" => Decay::Constant,
            "cosine" => Decay::Cosine {
                total_epochs: epochs as f32,
            },
            "step" => {
                let every = non_negative(
                    "step_epochs",
                    raw.step_epochs,
                    (epochs as f64 / 3.0).max(1.0),
                )?;
                if every == 0.0 {
                    return Err(self.err(&at("step_epochs"), "step_epochs must be > 0".into()));
                }
                let gamma = non_negative("gamma", raw.gamma, 0.1)?;
                Decay::Step {
                    every_epochs: every,
                    gamma,
                }
            }
            other => {
                return Err(self.err(
                    &at("type"),
                    format!("unknown schedule `{other}` (expected constant, step or cosine)"),
                ))
            }
        };
        Ok(LrSchedule {
            warmup_epochs,
            decay,
        })
    }

    pub(super) fn space_error(&self, e: SpaceError) -> Error {
        let mut path: Vec<&str> = vec!["parameters"];
        path.extend(e.path.iter().map(String::as_str));
        self.err(&path, e.message)
    }

    /// A transformer's `heads` must divide its `d_model`. Pairs that do not are recorded
    /// failed untrained one by one, but a space in which no pair divides (`heads` and
    /// `d_model` fixed or tuned over integer values) is refused before anything trains.
    /// `head_dim` makes every pair valid by construction.
    pub(super) fn check_heads(&self, space: &Space, defaults: &KnobDefaults) -> Result<()> {
        let Some(vit) = defaults.vit else {
            return Ok(());
        };
        let tuned = |name: &str| space.params.iter().find(|p| p.name == name);
        if vit.head_dim.is_some() || tuned("head_dim").is_some() {
            if tuned("d_model").is_some() || vit.head_dim.is_some() && tuned("head_dim").is_some() {
                let key = if tuned("d_model").is_some() {
                    "d_model"
                } else {
                    "head_dim"
                };
                return Err(self.space_error(SpaceError::at(
                    key,
                    "",
                    "d_model = heads · head_dim: tune head_dim or d_model, not both",
                )));
            }
            return Ok(());
        }
        if tuned("heads").is_none() && tuned("d_model").is_none() {
            // Both fixed: the model check names the pair (`Arch::vit`).
            return Ok(());
        }
        // Every integer a parameter can take, or `None` when there are too many to list.
        let values = |name: &str, fixed: usize| -> Option<Vec<usize>> {
            match tuned(name).map(|p| &p.dist) {
                None => Some(vec![fixed]),
                Some(Distribution::Categorical { choices, .. }) => choices
                    .iter()
                    .map(|c| c.as_f64().map(|v| v as usize))
                    .collect(),
                Some(Distribution::Int {
                    low, high, step, ..
                }) if (high - low) / step.max(&1) < 4096 => Some(
                    (*low..=*high)
                        .step_by((*step).max(1) as usize)
                        .map(|v| v as usize)
                        .collect(),
                ),
                Some(_) => None,
            }
        };
        let (Some(heads), Some(widths)) = (
            values("heads", vit.spec.heads),
            values("d_model", vit.spec.d_model),
        ) else {
            return Ok(());
        };
        if heads
            .iter()
            .any(|&h| h > 0 && widths.iter().any(|&d| d % h == 0))
        {
            return Ok(());
        }
        let key = if tuned("heads").is_some() {
            "heads"
        } else {
            "d_model"
        };
        Err(self.space_error(SpaceError::at(
            key,
            "",
            &format!(
                "no heads value ({heads:?}) divides any d_model value ({widths:?}): every \
                 trial would fail; tune head_dim (d_model = heads · head_dim) instead"
            ),
        )))
    }

    /// Checks every parameter against the built-in model's knobs: the name must be one,
    /// the kind (integer or real) must match, and every value it can take must be valid.
    pub(super) fn check_knobs(&self, mut space: Space, family: Family) -> Result<Space> {
        let names: Vec<&str> = KNOBS
            .iter()
            .filter(|k| k.tunes(family))
            .map(|k| k.name)
            .collect();
        let widths = match family {
            Family::Mlp => ", width_<k>",
            Family::Cnn | Family::Vit => "",
        };
        for def in &mut space.params {
            let name = def.name.clone();
            let at = |key: &str| SpaceError::at(&name, key, "");
            let fail =
                |key: &str, message: String| self.space_error(SpaceError { message, ..at(key) });
            let knob = knob(&name).filter(|k| k.tunes(family)).ok_or_else(|| {
                fail(
                    "",
                    format!(
                        "unknown parameter `{name}` (the built-in {} tunes {}{widths})",
                        family.name().to_uppercase(),
                        names.join(", ")
                    ),
                )
            })?;
            let check = |key: &str, x: f64| {
                if (knob.accepts)(x) {
                    Ok(())
                } else {
                    Err(fail(
                        key,
                        format!("{x} is outside the valid range {} of {name}", knob.range),
                    ))
                }
            };
            match (knob.kind, &mut def.dist) {
                (KnobKind::Int, Distribution::Int { low, high, .. }) => {
                    check("min", *low as f64)?;
                    check("max", *high as f64)?;
                }
                (KnobKind::Float, Distribution::Float { low, high, .. }) => {
                    check("min", *low)?;
                    check("max", *high)?;
                }
                // A shaped prior is sampled only between its extreme quantiles (see
                // space::prior), so those two values bound every trial exactly.
                (KnobKind::Int, dist @ Distribution::Shaped { int: true, .. })
                | (KnobKind::Float, dist @ Distribution::Shaped { int: false, .. }) => {
                    for u in [0.0, 1.0] {
                        check(
                            "distribution",
                            from_unit(dist, u).as_f64().unwrap_or(f64::NAN),
                        )?;
                    }
                }
                (KnobKind::Choice(names), Distribution::Categorical { choices, .. }) => {
                    for c in choices.iter() {
                        match c {
                            ParamValue::Str(s) if names.contains(&s.as_str()) => {}
                            other => {
                                return Err(fail(
                                    "values",
                                    format!("{name} takes one of {}, not {other}", knob.range),
                                ))
                            }
                        }
                    }
                }
                (KnobKind::Choice(_), _) => {
                    return Err(fail(
                        "distribution",
                        format!("{name} is categorical: use values: [{}]", knob.range),
                    ))
                }
                (kind, Distribution::Categorical { choices, .. }) => {
                    for c in choices.iter_mut() {
                        *c = match (kind, &*c) {
                            (KnobKind::Int, ParamValue::Int(_)) => c.clone(),
                            (KnobKind::Float, v) if v.as_f64().is_some() => {
                                ParamValue::Float(v.as_f64().unwrap_or_default())
                            }
                            (_, other) => {
                                return Err(fail(
                                    "values",
                                    format!("{name} takes {} values, not {other}", kind_word(kind)),
                                ))
                            }
                        };
                        check("values", c.as_f64().unwrap_or_default())?;
                    }
                }
                (KnobKind::Int, _) => {
                    return Err(fail(
                        "distribution",
                        format!("{name} takes integers: use int_uniform or values"),
                    ))
                }
                (KnobKind::Float, _) => {
                    return Err(fail(
                        "distribution",
                        format!(
                            "{name} takes real numbers: write the bounds as floats (e.g. 0.0) \
                             or use distribution: uniform"
                        ),
                    ))
                }
            }
        }
        Ok(space)
    }
}
