//! Schedulers: at each rung, which members continue and which stop.

mod halving;

pub use halving::SuccessiveHalving;

/// Indices of the finite `values` (`None` marks a failed member), best first. Ties go to
/// the lower index (the earlier trial), so every choice is deterministic.
pub fn rank(values: &[Option<f64>], maximize: bool) -> Vec<usize> {
    let mut ranked: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.filter(|x| x.is_finite()).map(|x| (i, x)))
        .collect();
    ranked.sort_by(|a, b| {
        let order = a.1.total_cmp(&b.1);
        (if maximize { order.reverse() } else { order }).then(a.0.cmp(&b.0))
    });
    ranked.into_iter().map(|(i, _)| i).collect()
}
