//! `enqueue` and `warm_start` of a sweep file: configurations to try first, and an
//! earlier run or study whose trials seed the sampler (loaded by `sweep::warm`).

use super::raw::RawWarmStart;
use super::Ctx;
use crate::error::Result;
use crate::space::{Params, Space};
use crate::tuner::sampler::SamplerKind;
use std::path::PathBuf;

impl Ctx<'_> {
    /// The enqueued configurations, each checked against the space (an integer written
    /// for a float parameter is that float), and the warm start's directory.
    pub(super) fn warm(
        &self,
        enqueue: Option<Vec<Params>>,
        warm_start: Option<RawWarmStart>,
        space: &Space,
        sampler: SamplerKind,
    ) -> Result<(Vec<Params>, Option<PathBuf>)> {
        let mut queue = Vec::new();
        for (i, mut params) in enqueue.unwrap_or_default().into_iter().enumerate() {
            space.coerce(&mut params);
            space
                .check(&params)
                .map_err(|e| self.err(&["enqueue"], format!("entry {}: {e}", i + 1)))?;
            queue.push(params);
        }
        let from = match warm_start {
            None => None,
            Some(w) if w.from.trim().is_empty() => {
                return Err(self.err(
                    &["warm_start", "from"],
                    "names no directory (an earlier run directory or study)".into(),
                ))
            }
            Some(w) => Some(PathBuf::from(w.from)),
        };
        if from.is_some() && sampler == SamplerKind::Grid {
            return Err(self.err(
                &["warm_start"],
                "a grid sweep tries every point whatever came before; warm starts seed the \
                 model-based samplers (tpe, gp)"
                    .into(),
            ));
        }
        Ok((queue, from))
    }
}
