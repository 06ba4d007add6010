//! Max, average and global-average pooling over `(C, H, W)` samples (see
//! [`crate::model::layers::Pool`]: `size×size` windows at stride `size`, floor mode).
//!
//! Max pooling keeps, per output, the index (within the sample) of the value it took; on
//! ties the first in row-major order wins and alone gets the gradient, as PyTorch's CPU
//! kernel does. CUDA twin: `kernels/pool.cu` (checked under emulation,
//! tests/kernel_emulation.rs).

use super::Real;
use crate::model::layers::Pool;

/// Calls `f(output index, first input index of its window)` for every output of one
/// sample; a window's element `(dy, dx)` is at `first + dy·width + dx`. Plain loops: an
/// iterator chain per window cost a fifth of a CNN step.
#[inline(always)]
fn windows(p: &Pool, mut f: impl FnMut(usize, usize)) {
    let (oh, ow) = (p.out_height(), p.out_width());
    for c in 0..p.channels {
        for oy in 0..oh {
            let row = (c * p.height + oy * p.size) * p.width;
            for ox in 0..ow {
                f((c * oh + oy) * ow + ox, row + ox * p.size);
            }
        }
    }
}

pub fn max_pool_forward<T: Real>(p: &Pool, batch: usize, x: &[T], y: &mut [T], argmax: &mut [u32]) {
    if p.size == 2 {
        return max_pool_2x2(p, batch, x, y, argmax);
    }
    max_pool_any(p, batch, x, y, argmax)
}

/// Any window size: the reference the 2×2 path is tested against.
fn max_pool_any<T: Real>(p: &Pool, batch: usize, x: &[T], y: &mut [T], argmax: &mut [u32]) {
    let (n_in, n_out, w) = (p.in_size(), p.out_size(), p.width);
    for n in 0..batch {
        let xs = &x[n * n_in..(n + 1) * n_in];
        let (ys, picks) = (&mut y[n * n_out..], &mut argmax[n * n_out..]);
        windows(p, |o, first| {
            let mut best = first;
            for dy in 0..p.size {
                for i in first + dy * w..first + dy * w + p.size {
                    if xs[i] > xs[best] {
                        best = i;
                    }
                }
            }
            ys[o] = xs[best];
            picks[o] = best as u32;
        });
    }
}

/// The common 2×2 window on row slices: no bounds check or loop per tap, and the four
/// comparisons in row-major order keep the tie rule.
fn max_pool_2x2<T: Real>(p: &Pool, batch: usize, x: &[T], y: &mut [T], argmax: &mut [u32]) {
    let (oh, ow, w) = (p.out_height(), p.out_width(), p.width);
    let plane = p.height * w;
    let (n_in, n_out) = (p.in_size(), p.out_size());
    for n in 0..batch {
        for c in 0..p.channels {
            for oy in 0..oh {
                let top = n * n_in + c * plane + 2 * oy * w;
                let (r0, r1) = (&x[top..top + 2 * ow], &x[top + w..top + w + 2 * ow]);
                let out = n * n_out + (c * oh + oy) * ow;
                let (ys, picks) = (&mut y[out..out + ow], &mut argmax[out..out + ow]);
                let base = (c * plane + 2 * oy * w) as u32;
                for (ox, (v, pick)) in ys.iter_mut().zip(picks.iter_mut()).enumerate() {
                    let taps = [r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]];
                    let mut k = 0;
                    for (j, &t) in taps.iter().enumerate().skip(1) {
                        if t > taps[k] {
                            k = j;
                        }
                    }
                    *v = taps[k];
                    let offset = (k & 1) + (k >> 1) * w;
                    *pick = base + (2 * ox + offset) as u32;
                }
            }
        }
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
        windows(p, |o, first| {
            let rows = (0..p.size).map(|dy| first + dy * p.width);
            let sum = rows.map(|r| xs[r..r + p.size].iter().copied().sum::<T>());
            ys[o] = sum.sum::<T>() * scale;
        });
    }
}

pub fn avg_pool_backward<T: Real>(p: &Pool, batch: usize, dy: &[T], dx: &mut [T]) {
    let (n_in, n_out) = (p.in_size(), p.out_size());
    let scale = T::one() / T::from_f32((p.size * p.size) as f32);
    dx[..batch * n_in].fill(T::zero());
    for n in 0..batch {
        let gs = &dy[n * n_out..(n + 1) * n_out];
        let grads = &mut dx[n * n_in..(n + 1) * n_in];
        windows(p, |o, first| {
            for dy in 0..p.size {
                let r = first + dy * p.width;
                for g in &mut grads[r..r + p.size] {
                    *g += gs[o] * scale;
                }
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
    fn the_two_by_two_path_equals_the_general_one_ties_included() {
        let p = Pool {
            channels: 3,
            size: 2,
            height: 7,
            width: 6,
        };
        // Few distinct values, so windows hold ties.
        let x: Vec<f64> = (0..2 * p.in_size())
            .map(|i| ((i * 7919) % 5) as f64)
            .collect();
        let n = 2 * p.out_size();
        let (mut y1, mut y2, mut a1, mut a2) = (vec![0.0; n], vec![0.0; n], vec![0; n], vec![0; n]);
        max_pool_2x2(&p, 2, &x, &mut y1, &mut a1);
        max_pool_any(&p, 2, &x, &mut y2, &mut a2);
        assert_eq!((y1, a1), (y2, a2));
        // A 3×3 window through the general path.
        let q = Pool {
            channels: 1,
            size: 3,
            height: 3,
            width: 4,
        };
        let x = [1.0, 2.0, 3.0, 9.0, 8.0, 0.0, 8.0, 9.0, 1.0, 1.0, 1.0, 9.0];
        let (mut y, mut a) = ([0.0f64], [0u32]);
        max_pool_forward(&q, 1, &x, &mut y, &mut a);
        assert_eq!((y[0], a[0]), (8.0, 4));
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
