//! Max, average and global-average pooling over `(C, H, W)` samples (see
//! [`crate::model::layers::Pool`]: `size×size` windows at stride `size`, floor mode).
//!
//! Max pooling keeps, per output, the index (within the sample) of the value it took; on
//! ties the first in row-major order wins and alone gets the gradient, as PyTorch's CPU
//! kernel does. CUDA twin: none yet.

use super::Real;
use crate::model::layers::Pool;

/// The input index of window `(c, oy, ox)`'s element `(dy, dx)`.
#[inline]
fn at(p: &Pool, c: usize, oy: usize, ox: usize, dy: usize, dx: usize) -> usize {
    (c * p.height + oy * p.size + dy) * p.width + ox * p.size + dx
}

/// Calls `f(output index, input indices of its window)` for every output of one sample.
fn windows(p: &Pool, mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>)) {
    let (oh, ow) = (p.out_height(), p.out_width());
    for c in 0..p.channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut taps = (0..p.size)
                    .flat_map(move |dy| (0..p.size).map(move |dx| (dy, dx)))
                    .map(|(dy, dx)| at(p, c, oy, ox, dy, dx));
                f((c * oh + oy) * ow + ox, &mut taps);
            }
        }
    }
}

pub fn max_pool_forward<T: Real>(p: &Pool, batch: usize, x: &[T], y: &mut [T], argmax: &mut [u32]) {
    let (n_in, n_out) = (p.in_size(), p.out_size());
    for n in 0..batch {
        let xs = &x[n * n_in..(n + 1) * n_in];
        let (ys, picks) = (&mut y[n * n_out..], &mut argmax[n * n_out..]);
        windows(p, |o, taps| {
            let first = taps.next().expect("a window has an element");
            let best = taps.fold(first, |best, i| if xs[i] > xs[best] { i } else { best });
            ys[o] = xs[best];
            picks[o] = best as u32;
        });
    }
}

/// `dx` is overwritten: each output's gradient goes to the input it took.
pub fn max_pool_backward<T: Real>(p: &Pool, batch: usize, dy: &[T], argmax: &[u32], dx: &mut [T]) {
    let (n_in, n_out) = (p.in_size(), p.out_size());
    dx[..batch * n_in].fill(T::zero());
    for n in 0..batch {
        let grads = &mut dx[n * n_in..(n + 1) * n_in];
        for (&g, &i) in dy[n * n_out..(n + 1) * n_out]
            .iter()
            .zip(&argmax[n * n_out..])
        {
            grads[i as usize] += g;
        }
    }
}

pub fn avg_pool_forward<T: Real>(p: &Pool, batch: usize, x: &[T], y: &mut [T]) {
    let (n_in, n_out) = (p.in_size(), p.out_size());
    let scale = T::one() / T::from_f32((p.size * p.size) as f32);
    for n in 0..batch {
        let xs = &x[n * n_in..(n + 1) * n_in];
        let ys = &mut y[n * n_out..(n + 1) * n_out];
        windows(p, |o, taps| ys[o] = taps.map(|i| xs[i]).sum::<T>() * scale);
    }
}

pub fn avg_pool_backward<T: Real>(p: &Pool, batch: usize, dy: &[T], dx: &mut [T]) {
    let (n_in, n_out) = (p.in_size(), p.out_size());
    let scale = T::one() / T::from_f32((p.size * p.size) as f32);
    dx[..batch * n_in].fill(T::zero());
    for n in 0..batch {
        let gs = &dy[n * n_out..(n + 1) * n_out];
        let grads = &mut dx[n * n_in..(n + 1) * n_in];
        windows(p, |o, taps| {
            for i in taps {
                grads[i] += gs[o] * scale;
            }
        });
    }
}

/// `(C, H, W)` → `(C)`: each channel's mean.
pub fn global_avg_pool_forward<T: Real>(p: &Pool, batch: usize, x: &[T], y: &mut [T]) {
    let plane = p.height * p.width;
    let scale = T::one() / T::from_f32(plane as f32);
    for (xs, ys) in x
        .chunks_exact(p.in_size())
        .zip(y.chunks_exact_mut(p.channels))
        .take(batch)
    {
        for (v, channel) in ys.iter_mut().zip(xs.chunks_exact(plane)) {
            *v = channel.iter().copied().sum::<T>() * scale;
        }
    }
}

pub fn global_avg_pool_backward<T: Real>(p: &Pool, batch: usize, dy: &[T], dx: &mut [T]) {
    let plane = p.height * p.width;
    let scale = T::one() / T::from_f32(plane as f32);
    for (gs, grads) in dy
        .chunks_exact(p.channels)
        .zip(dx.chunks_exact_mut(p.in_size()))
        .take(batch)
    {
        for (&g, channel) in gs.iter().zip(grads.chunks_exact_mut(plane)) {
            channel.fill(g * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_takes_the_first_of_tied_values_and_drops_ragged_edges() {
        // One channel, 3×5 with 2×2 windows: outputs (1, 2); the last row and column drop.
        let p = Pool {
            channels: 1,
            size: 2,
            height: 3,
            width: 5,
        };
        #[rustfmt::skip]
        let x = [
            1.0, 4.0, 2.0, 2.0, 9.0,
            4.0, 0.0, 2.0, 1.0, 9.0,
            9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        let (mut y, mut arg) = ([0.0f64; 2], [0u32; 2]);
        max_pool_forward(&p, 1, &x, &mut y, &mut arg);
        assert_eq!(y, [4.0, 2.0]);
        assert_eq!(arg, [1, 2], "ties go to the first in row-major order");
        let mut dx = [7.0f64; 15];
        max_pool_backward(&p, 1, &[1.0, 2.0], &arg, &mut dx);
        let mut want = [0.0; 15];
        want[1] = 1.0;
        want[2] = 2.0;
        assert_eq!(dx, want);
    }

    #[test]
    fn average_pools_are_means_and_their_backward_spreads_evenly() {
        let p = Pool {
            channels: 2,
            size: 2,
            height: 2,
            width: 3,
        };
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        let mut y = [0.0; 2];
        avg_pool_forward(&p, 1, &x, &mut y);
        assert_eq!(
            y,
            [
                (0.0 + 1.0 + 3.0 + 4.0) / 4.0,
                (6.0 + 7.0 + 9.0 + 10.0) / 4.0
            ]
        );
        let mut g = [0.0; 2];
        global_avg_pool_forward(&p, 1, &x, &mut g);
        assert_eq!(g, [2.5, 8.5]);
        let mut dx = [0.0; 12];
        global_avg_pool_backward(&p, 1, &[6.0, 12.0], &mut dx);
        assert_eq!(dx[..6], [1.0; 6]);
        assert_eq!(dx[6..], [2.0; 6]);
        avg_pool_backward(&p, 1, &[4.0, 8.0], &mut dx);
        assert_eq!(
            dx,
            [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0, 2.0, 0.0, 2.0, 2.0, 0.0]
        );
    }
}
