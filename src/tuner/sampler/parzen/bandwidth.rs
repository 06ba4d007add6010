//! Where the estimator's kernels sit and how wide they are: order keys (floats sorted as
//! integers), neighbour-gap bandwidths, Scott's rule.

use super::ParzenParams;

/// A key whose integer order is `f64::total_cmp`'s order: sorting and selecting on these
/// integers is several times cheaper than comparing floats.
pub fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The inverse of [`order_key`].
pub(super) fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Each observation's bandwidth: the larger gap to its sorted neighbours (the range's
/// ends count as neighbours, except the outer gaps when endpoints are not considered),
/// clipped to `[range / min(100, n + 2), range]` ("magic clip"). `order`: the indices of
/// `mus` sorted, ties by index, if the caller has them.
pub(super) fn bandwidths(
    mus: &[f64],
    low: f64,
    high: f64,
    params: ParzenParams,
    order: Option<&[u32]>,
) -> Vec<f64> {
    let n = mus.len();
    let sorted_here: Vec<u32>;
    let order = match order {
        Some(order) => order,
        None => {
            let mut pairs: Vec<(u64, u32)> = mus.iter().map(|&x| order_key(x)).zip(0..).collect();
            pairs.sort_unstable();
            sorted_here = pairs.iter().map(|p| p.1).collect();
            &sorted_here
        }
    };
    let mut padded = Vec::with_capacity(n + 2);
    padded.push(low);
    padded.extend(order.iter().map(|&i| mus[i as usize]));
    padded.push(high);
    let mut sorted_sigmas: Vec<f64> = (1..=n)
        .map(|i| (padded[i] - padded[i - 1]).max(padded[i + 1] - padded[i]))
        .collect();
    if !params.consider_endpoints && padded.len() >= 4 {
        sorted_sigmas[0] = padded[2] - padded[1];
        sorted_sigmas[n - 1] = padded[n] - padded[n - 1];
    }
    let max_sigma = high - low;
    let min_sigma = if params.consider_magic_clip {
        (high - low) / (100f64).min(1.0 + (n + 1) as f64)
    } else {
        1e-12
    };
    let mut sigmas = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        sigmas[i as usize] = sorted_sigmas[rank].clamp(min_sigma, max_sigma);
    }
    sigmas
}

/// Scott's rule of thumb, `1.059 · min(IQR/1.34, sd) · n^(−1/5)` (sample sd; NumPy's
/// linear-interpolation quartiles).
pub(super) fn scott(xs: &[f64]) -> f64 {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let ddof = if n > 1 { 1 } else { 0 };
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - ddof) as f64).sqrt();
    // The quartiles' order statistics by selection on integer keys: the third quartile's
    // pair first, then the first quartile's among the values at or below it (a fifth of
    // what four selections over all of them cost).
    let mut keys: Vec<u64> = xs.iter().map(|&x| order_key(x)).collect();
    let at = |q: f64| {
        let at = q * (n - 1) as f64;
        (at.floor() as usize, at - at.floor())
    };
    let ((i3, f3), (i1, f1)) = (at(0.75), at(0.25));
    let (a3, b3) = neighbouring_order_statistics(&mut keys, i3);
    let (a1, b1) = if i1 < i3 {
        neighbouring_order_statistics(&mut keys[..=i3], i1)
    } else {
        (a3, b3)
    };
    let iqr = (a3 + f3 * (b3 - a3)) - (a1 + f1 * (b1 - a1));
    1.059 * (iqr / 1.34).min(sd) * (n as f64).powf(-0.2)
}

/// The `i`-th and `i+1`-th smallest of the values behind `keys` (the `i`-th twice if it is
/// the largest); leaves the `i + 1` smallest in `keys[..=i]`.
pub(super) fn neighbouring_order_statistics(keys: &mut [u64], i: usize) -> (f64, f64) {
    let (_, &mut at, above) = keys.select_nth_unstable(i);
    let next = above.iter().copied().min().unwrap_or(at);
    (from_order_key(at), from_order_key(next))
}
