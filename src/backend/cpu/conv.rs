//! 2-D convolution by im2col and GEMM, a sample at a time.
//!
//! Shapes (row-major, per sample): `x` `(C, H, W)`, `w` `(O, C·k·k)`, `b` `(O)`, `y` and
//! `dy` `(O, OH, OW)`. The column buffer of one sample is `(C·k·k, OH·OW)`: a few hundred
//! KB at most for the images this engine tunes on, so it stays in L2 between the im2col
//! and the GEMM that reads it, where a whole batch's columns would not.
//! CUDA twin: `kernels/conv.cu`, an implicit GEMM (checked under emulation,
//! tests/kernel_emulation.rs).

use super::Real;
use crate::model::layers::Conv2d;

/// Column-buffer length one sample needs.
pub fn col_len(c: &Conv2d) -> usize {
    c.fan_in() * c.out_height() * c.out_width()
}

/// The input pixel under kernel tap `t` (`ky` or `kx`) of output position `o`, or `None`
/// in the padding.
#[inline]
fn source(o: usize, t: usize, c: &Conv2d, extent: usize) -> Option<usize> {
    (o * c.stride + t)
        .checked_sub(c.pad)
        .filter(|&i| i < extent)
}

/// The output columns `ox` whose tap `kx` lands inside a row of `c.width` pixels, at
/// stride 1: `ox + kx − pad ∈ [0, width)`. Outside it the tap reads padding.
#[inline]
fn inside(c: &Conv2d, kx: usize, ow: usize) -> std::ops::Range<usize> {
    let first = c.pad.saturating_sub(kx).min(ow);
    let end = (c.width + c.pad).saturating_sub(kx).clamp(first, ow);
    first..end
}

/// `col[(ci·k + ky)·k + kx][oy·OW + ox] = x[ci][oy·s + ky − pad][ox·s + kx − pad]`, zero in
/// the padding. At stride 1 each output row is a zero-padded copy of an input row (the
/// common case, and the profile's hotspot before: a branch per element).
pub fn im2col<T: Real>(c: &Conv2d, x: &[T], col: &mut [T]) {
    let (oh, ow, k) = (c.out_height(), c.out_width(), c.kernel);
    let plane = c.height * c.width;
    let mut rows = col.chunks_exact_mut(oh * ow);
    for ci in 0..c.in_channels {
        let image = &x[ci * plane..(ci + 1) * plane];
        for ky in 0..k {
            for kx in 0..k {
                let row = rows.next().expect("fan_in rows");
                let span = inside(c, kx, ow);
                for oy in 0..oh {
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    let Some(iy) = source(oy, ky, c, c.height) else {
                        out.fill(T::zero());
                        continue;
                    };
                    let line = &image[iy * c.width..(iy + 1) * c.width];
                    if c.stride == 1 && span.is_empty() {
                        out.fill(T::zero());
                    } else if c.stride == 1 {
                        out[..span.start].fill(T::zero());
                        let from = span.start + kx - c.pad;
                        out[span.clone()].copy_from_slice(&line[from..from + span.len()]);
                        out[span.end..].fill(T::zero());
                    } else {
                        for (ox, v) in out.iter_mut().enumerate() {
                            *v = source(ox, kx, c, c.width).map_or(T::zero(), |ix| line[ix]);
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back onto the pixel it came from.
pub fn col2im<T: Real>(c: &Conv2d, col: &[T], dx: &mut [T]) {
    let (oh, ow, k) = (c.out_height(), c.out_width(), c.kernel);
    let plane = c.height * c.width;
    let mut rows = col.chunks_exact(oh * ow);
    for ci in 0..c.in_channels {
        let image = &mut dx[ci * plane..(ci + 1) * plane];
        for ky in 0..k {
            for kx in 0..k {
                let row = rows.next().expect("fan_in rows");
                for oy in 0..oh {
                    let Some(iy) = source(oy, ky, c, c.height) else {
                        continue;
                    };
                    let line = &mut image[iy * c.width..(iy + 1) * c.width];
                    let grads = &row[oy * ow..(oy + 1) * ow];
                    let span = inside(c, kx, ow);
                    if c.stride == 1 && span.is_empty() {
                        continue;
                    } else if c.stride == 1 {
                        let from = span.start + kx - c.pad;
                        for (g, &v) in line[from..from + span.len()].iter_mut().zip(&grads[span]) {
                            *g += v;
                        }
                    } else {
                        for (ox, &v) in grads.iter().enumerate() {
                            if let Some(ix) = source(ox, kx, c, c.width) {
                                line[ix] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The sum of `xs` in eight interleaved partial sums, which vectorise (a single running
/// sum is a chain of dependent adds: a tenth of a convolution's backward pass).
fn lane_sum<T: Real>(xs: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    let tail: T = chunks.remainder().iter().copied().sum();
    lanes.iter().copied().sum::<T>() + tail
}

/// `y = conv(x, w) + b` for `batch` samples; `col` is scratch of [`col_len`].
pub fn conv_forward<T: Real>(
    c: &Conv2d,
    batch: usize,
    x: &[T],
    w: &[T],
    b: &[T],
    y: &mut [T],
    col: &mut [T],
) {
    let (p, fan_in, o) = (c.out_height() * c.out_width(), c.fan_in(), c.out_channels);
    let col = &mut col[..fan_in * p];
    for n in 0..batch {
        im2col(c, &x[n * c.in_size()..(n + 1) * c.in_size()], col);
        let out = &mut y[n * o * p..(n + 1) * o * p];
        for (row, &bias) in out.chunks_exact_mut(p).zip(b) {
            row.fill(bias);
        }
        T::gemm(
            o,
            fan_in,
            p,
            T::one(),
            (w, fan_in, 1),
            (col, p, 1),
            T::one(),
            (out, p, 1),
        );
    }
}

/// Writes `dw`, `db` and, when asked, `dx` (the first layer needs none) for `batch`
/// samples; `col` and `dcol` are scratch of [`col_len`] each.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward<T: Real>(
    c: &Conv2d,
    batch: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    mut dx: Option<&mut [T]>,
    dw: &mut [T],
    db: &mut [T],
    (col, dcol): (&mut [T], &mut [T]),
) {
    let (p, fan_in, o) = (c.out_height() * c.out_width(), c.fan_in(), c.out_channels);
    let (col, dcol) = (&mut col[..fan_in * p], &mut dcol[..fan_in * p]);
    dw[..o * fan_in].fill(T::zero());
    db[..o].fill(T::zero());
    for n in 0..batch {
        let grad = &dy[n * o * p..(n + 1) * o * p];
        im2col(c, &x[n * c.in_size()..(n + 1) * c.in_size()], col);
        // dw += dy_n · col_nᵀ
        T::gemm(
            o,
            p,
            fan_in,
            T::one(),
            (grad, p, 1),
            (col, 1, p),
            T::one(),
            (dw, fan_in, 1),
        );
        for (g, row) in db.iter_mut().zip(grad.chunks_exact(p)) {
            *g += lane_sum(row);
        }
        if let Some(dx) = dx.as_deref_mut() {
            // dcol = wᵀ · dy_n, then back onto the pixels.
            T::gemm(
                fan_in,
                o,
                p,
                T::one(),
                (w, 1, fan_in),
                (grad, p, 1),
                T::zero(),
                (dcol, p, 1),
            );
            let out = &mut dx[n * c.in_size()..(n + 1) * c.in_size()];
            out.fill(T::zero());
            col2im(c, dcol, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct seven loops: the oracle for the im2col path.
    fn reference(
        c: &Conv2d,
        batch: usize,
        x: &[f64],
        w: &[f64],
        b: &[f64],
        dy: &[f64],
    ) -> [Vec<f64>; 4] {
        let (oh, ow, k) = (c.out_height(), c.out_width(), c.kernel);
        let mut y = vec![0.0; batch * c.out_size()];
        let mut dx = vec![0.0; batch * c.in_size()];
        let mut dw = vec![0.0; w.len()];
        let mut db = vec![0.0; b.len()];
        for n in 0..batch {
            for o in 0..c.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let yi = n * c.out_size() + (o * oh + oy) * ow + ox;
                        let mut acc = b[o];
                        for ci in 0..c.in_channels {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = (oy * c.stride + ky) as isize - c.pad as isize;
                                    let ix = (ox * c.stride + kx) as isize - c.pad as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= c.height as isize
                                        || ix >= c.width as isize
                                    {
                                        continue;
                                    }
                                    let xi = n * c.in_size()
                                        + (ci * c.height + iy as usize) * c.width
                                        + ix as usize;
                                    let wi = o * c.fan_in() + (ci * k + ky) * k + kx;
                                    acc += x[xi] * w[wi];
                                    dx[xi] += dy[yi] * w[wi];
                                    dw[wi] += dy[yi] * x[xi];
                                }
                            }
                        }
                        y[yi] = acc;
                        db[o] += dy[yi];
                    }
                }
            }
        }
        [y, dx, dw, db]
    }

    fn filled(n: usize, salt: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + salt) * 0.37).sin()).collect()
    }

    #[test]
    fn im2col_convolution_matches_direct_loops_on_awkward_shapes() {
        // (in, out, k, stride, pad, h, w, batch): 1×1 and 5×5 kernels, odd sizes, stride 2,
        // valid and same padding, one channel, a batch of one.
        let shapes = [
            (1, 1, 1, 1, 0, 1, 1, 1),
            (2, 3, 3, 1, 1, 5, 7, 2),
            (1, 2, 5, 1, 2, 6, 5, 1),
            (3, 2, 3, 2, 0, 7, 7, 3),
            (2, 4, 5, 2, 1, 9, 8, 2),
            (4, 1, 1, 2, 0, 5, 5, 1),
            (1, 2, 5, 1, 2, 1, 1, 2),
            (2, 2, 5, 1, 2, 2, 3, 1),
            (1, 1, 3, 1, 0, 3, 4, 1),
        ];
        for (i, o, k, s, pad, h, w, batch) in shapes {
            let c = Conv2d {
                in_channels: i,
                out_channels: o,
                kernel: k,
                stride: s,
                pad,
                height: h,
                width: w,
            };
            let x = filled(batch * c.in_size(), 1.0);
            let wt = filled(o * c.fan_in(), 2.0);
            let b = filled(o, 3.0);
            let dy = filled(batch * c.out_size(), 4.0);
            let mut y = vec![0.0; batch * c.out_size()];
            let (mut col, mut dcol) = (vec![0.0; col_len(&c)], vec![0.0; col_len(&c)]);
            conv_forward(&c, batch, &x, &wt, &b, &mut y, &mut col);
            let mut dx = vec![0.0; x.len()];
            let (mut dw, mut db) = (vec![0.0; wt.len()], vec![0.0; o]);
            conv_backward(
                &c,
                batch,
                &x,
                &wt,
                &dy,
                Some(&mut dx),
                &mut dw,
                &mut db,
                (&mut col, &mut dcol),
            );
            let want = reference(&c, batch, &x, &wt, &b, &dy);
            for (name, (got, want)) in ["y", "dx", "dw", "db"]
                .iter()
                .zip([y, dx, dw, db].iter().zip(&want))
            {
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    assert!((g - w).abs() < 1e-12, "{name}: {g} vs {w} at {c:?}");
                }
            }
        }
    }
}
