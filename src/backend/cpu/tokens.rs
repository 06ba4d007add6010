//! The reshapes that turn an image into a token sequence and back into one vector: the
//! transpose of a patch convolution's `(D, T)` channel-major output into `(T, D)` tokens,
//! learned position embeddings added to the tokens, and the classifier's input: the mean
//! over tokens, or a learned class token put first and read back at the end. CUDA twin:
//! `kernels/tokens.cu`.

use super::Real;

/// `y[n][c][r] = x[n][r][c]`: each sample's `(rows, cols)` block transposed.
pub fn transpose<T: Real>(rows: usize, cols: usize, batch: usize, x: &[T], y: &mut [T]) {
    let size = rows * cols;
    for n in 0..batch {
        let (xs, ys) = (
            &x[n * size..(n + 1) * size],
            &mut y[n * size..(n + 1) * size],
        );
        for r in 0..rows {
            for c in 0..cols {
                ys[c * rows + r] = xs[r * cols + c];
            }
        }
    }
}

/// Adds the `(T, D)` embedding to every sample, in place.
pub fn add_position<T: Real>(batch: usize, embedding: &[T], x: &mut [T]) {
    let size = embedding.len();
    for sample in x[..batch * size].chunks_exact_mut(size) {
        for (v, &e) in sample.iter_mut().zip(embedding) {
            *v += e;
        }
    }
}

/// The embedding's gradient: the sum of the samples' gradients (overwritten).
pub fn position_backward<T: Real>(batch: usize, dy: &[T], d_embedding: &mut [T]) {
    let size = d_embedding.len();
    d_embedding.fill(T::zero());
    for sample in dy[..batch * size].chunks_exact(size) {
        for (g, &v) in d_embedding.iter_mut().zip(sample) {
            *g += v;
        }
    }
}

/// `y[n][d] = mean over t of x[n][t][d]`.
pub fn token_mean_forward<T: Real>(tokens: usize, dim: usize, batch: usize, x: &[T], y: &mut [T]) {
    let inv = T::one() / T::from_f32(tokens as f32);
    for n in 0..batch {
        let out = &mut y[n * dim..(n + 1) * dim];
        out.fill(T::zero());
        for token in x[n * tokens * dim..(n + 1) * tokens * dim].chunks_exact(dim) {
            for (o, &v) in out.iter_mut().zip(token) {
                *o += v;
            }
        }
        for o in out.iter_mut() {
            *o *= inv;
        }
    }
}

/// `dx[n][t][d] = dy[n][d] / T`.
pub fn token_mean_backward<T: Real>(
    tokens: usize,
    dim: usize,
    batch: usize,
    dy: &[T],
    dx: &mut [T],
) {
    let inv = T::one() / T::from_f32(tokens as f32);
    for n in 0..batch {
        let g = &dy[n * dim..(n + 1) * dim];
        for token in dx[n * tokens * dim..(n + 1) * tokens * dim].chunks_exact_mut(dim) {
            for (o, &v) in token.iter_mut().zip(g) {
                *o = v * inv;
            }
        }
    }
}

/// `y[n] = [class; x[n]]`: the class token before each sample's `tokens` tokens.
pub fn class_token_forward<T: Real>(
    (tokens, dim): (usize, usize),
    batch: usize,
    class: &[T],
    x: &[T],
    y: &mut [T],
) {
    let size = tokens * dim;
    for n in 0..batch {
        let out = &mut y[n * (size + dim)..(n + 1) * (size + dim)];
        out[..dim].copy_from_slice(class);
        out[dim..].copy_from_slice(&x[n * size..(n + 1) * size]);
    }
}

/// The class token's gradient (the sum over samples of their first row's, overwritten)
/// and, with `dx`, the tokens' (the rest of each sample's).
pub fn class_token_backward<T: Real>(
    (tokens, dim): (usize, usize),
    batch: usize,
    dy: &[T],
    d_class: &mut [T],
    dx: Option<&mut [T]>,
) {
    let size = tokens * dim;
    d_class.fill(T::zero());
    for n in 0..batch {
        let g = &dy[n * (size + dim)..n * (size + dim) + dim];
        for (c, &v) in d_class.iter_mut().zip(g) {
            *c += v;
        }
    }
    if let Some(dx) = dx {
        for n in 0..batch {
            let g = &dy[n * (size + dim) + dim..(n + 1) * (size + dim)];
            dx[n * size..(n + 1) * size].copy_from_slice(g);
        }
    }
}

/// `y[n] = x[n][0]`: each sample's first token.
pub fn first_token_forward<T: Real>(
    (tokens, dim): (usize, usize),
    batch: usize,
    x: &[T],
    y: &mut [T],
) {
    for n in 0..batch {
        let first = n * tokens * dim;
        y[n * dim..(n + 1) * dim].copy_from_slice(&x[first..first + dim]);
    }
}

/// `dx[n][0] = dy[n]`, the other tokens' gradient zero.
pub fn first_token_backward<T: Real>(
    (tokens, dim): (usize, usize),
    batch: usize,
    dy: &[T],
    dx: &mut [T],
) {
    dx[..batch * tokens * dim].fill(T::zero());
    for n in 0..batch {
        let first = n * tokens * dim;
        dx[first..first + dim].copy_from_slice(&dy[n * dim..(n + 1) * dim]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_twice_is_the_identity_and_moves_each_entry() {
        let x: Vec<f64> = (0..2 * 6).map(f64::from).collect();
        let (mut y, mut z) = (vec![0.0; 12], vec![0.0; 12]);
        transpose(2, 3, 2, &x, &mut y);
        assert_eq!(&y[..6], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        transpose(3, 2, 2, &y, &mut z);
        assert_eq!(z, x);
    }

    #[test]
    fn token_mean_averages_each_feature() {
        let x = [1.0, 10.0, 3.0, 20.0, 5.0, 30.0];
        let mut y = [0.0; 2];
        token_mean_forward(3, 2, 1, &x, &mut y);
        assert_eq!(y, [3.0, 20.0]);
        let mut dx = [0.0; 6];
        token_mean_backward(3, 2, 1, &[3.0, 6.0], &mut dx);
        assert_eq!(dx, [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    }
}
