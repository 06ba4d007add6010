//! Input augmentation per member, drawn from the counter-based RNG keyed by (member seed,
//! step, row or element), so a member's augmented batch depends on nothing else — it is the
//! same alone, in any population, on any run:
//! - `shift`: each row's image (`(C, H, W)`, every channel by the same amount) is translated
//!   by up to `shift` pixels in each direction (uniform integers), zero-filled at the edges
//!   — which is exactly a random crop after zero padding of `shift` on every side;
//! - `flip`: each row's image is mirrored left to right with probability 1/2 (after the
//!   shift, every channel alike; wrong for digits and text, right for most photographs);
//! - `noise`: Gaussian noise of standard deviation `noise` added to every input.

use crate::data::ImageShape;
use crate::model::hparams::Augment;
use crate::rng::{stream_block, stream_word, unit_f32, Stream};

/// Writes the augmented copy of `xs` (rows of `image`'s features) into `out`. `image` is
/// the rows' image shape when `shift > 0` or `flip` (checked when the sweep starts).
pub fn augment_batch(
    aug: Augment,
    (seed, step): (u64, u64),
    xs: &[f32],
    image: ImageShape,
    out: &mut [f32],
) {
    let d = image.features();
    let (lo, hi) = (step as u32, (step >> 32) as u32);
    let word = |b: u32, index: u64| stream_word(seed, Stream::Augment, lo, hi ^ b, index);
    out[..xs.len()].copy_from_slice(xs);
    let (h, w) = (image.height as i64, image.width as i64);
    if aug.shift > 0 {
        let span = 2 * aug.shift as u64 + 1;
        for (r, (src, dst)) in xs.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
            let pick = |k: u64| (word(0, 2 * r as u64 + k) as u64 % span) as i64 - aug.shift as i64;
            let (dx, dy) = (pick(0), pick(1));
            let planes = src.chunks_exact((h * w) as usize);
            for (src, dst) in planes.zip(dst.chunks_exact_mut((h * w) as usize)) {
                for i in 0..h {
                    for j in 0..w {
                        let (si, sj) = (i - dy, j - dx);
                        dst[(i * w + j) as usize] = if (0..h).contains(&si) && (0..w).contains(&sj)
                        {
                            src[(si * w + sj) as usize]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
    if aug.flip {
        for (r, row) in out[..xs.len()].chunks_exact_mut(d).enumerate() {
            // Word 2 of the row's own block: independent of the shift's two words.
            if word(0, 2 * xs.len() as u64 + r as u64) & 1 == 1 {
                for line in row.chunks_exact_mut(w as usize) {
                    line.reverse();
                }
            }
        }
    }
    if aug.noise > 0.0 {
        // Element e draws words 2e and 2e + 1 (Box–Muller); elements 2p and 2p + 1 thus
        // share Philox block p, evaluated once for both.
        for (p, pair) in out[..xs.len()].chunks_mut(2).enumerate() {
            let words = stream_block(seed, Stream::Augment, lo, hi ^ (1 << 31), p as u64);
            for (x, w) in pair.iter_mut().zip(words.chunks_exact(2)) {
                *x += aug.noise * box_muller(w[0], w[1]);
            }
        }
    }
}

/// A standard normal from two uniform words.
fn box_muller(w1: u32, w2: u32) -> f32 {
    let u1 = unit_f32(w1).max(1e-7);
    let u2 = unit_f32(w2);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(n: usize) -> ImageShape {
        ImageShape::square(n).unwrap()
    }

    /// The pairwise loop adds exactly the noise of the per-element definition: words 2e
    /// and 2e + 1 of the stream for element e (odd lengths included).
    #[test]
    fn blocked_noise_equals_the_per_element_definition() {
        let aug = Augment {
            noise: 0.5,
            shift: 0,
            flip: false,
        };
        for n in [1usize, 2, 7, 64] {
            let xs = vec![0.0f32; n];
            let mut out = vec![0.0f32; n];
            let (seed, step) = (42u64, (3u64 << 32) + 9);
            augment_batch(aug, (seed, step), &xs, ImageShape::flat(n), &mut out);
            let (lo, hi) = (step as u32, ((step >> 32) as u32) ^ (1 << 31));
            for (e, x) in out.iter().enumerate() {
                let w = |i: u64| stream_word(seed, Stream::Augment, lo, hi, i);
                let z = box_muller(w(2 * e as u64), w(2 * e as u64 + 1));
                assert_eq!(*x, 0.5 * z, "n {n} element {e}");
            }
        }
    }

    #[test]
    fn shift_translates_whole_images_within_range() {
        // A 4×4 image with one lit pixel: after a shift it is still one lit pixel, moved by
        // at most `shift` in each direction (or pushed off the edge).
        let mut img = vec![0.0f32; 16];
        img[5] = 1.0; // (1, 1)
        let aug = Augment {
            noise: 0.0,
            shift: 1,
            flip: false,
        };
        let mut moved = std::collections::BTreeSet::new();
        for step in 0..40 {
            let mut out = vec![9.0f32; 16];
            augment_batch(aug, (3, step), &img, square(16), &mut out);
            let lit: Vec<usize> = (0..16).filter(|&k| out[k] == 1.0).collect();
            assert!(out.iter().all(|&v| v == 0.0 || v == 1.0));
            assert_eq!(lit.len(), 1);
            let (i, j) = (lit[0] / 4, lit[0] % 4);
            assert!(i.abs_diff(1) <= 1 && j.abs_diff(1) <= 1);
            moved.insert(lit[0]);
        }
        assert!(moved.len() > 4, "the shifts vary with the step");
        // Same key, same result; another seed, another result.
        let (mut a, mut b, mut c) = (vec![0.0; 16], vec![0.0; 16], vec![0.0; 16]);
        augment_batch(aug, (3, 7), &img, square(16), &mut a);
        augment_batch(aug, (3, 7), &img, square(16), &mut b);
        assert_eq!(a, b);
        let differs = (0..20).any(|s| {
            augment_batch(aug, (4, s), &img, square(16), &mut c);
            augment_batch(aug, (3, s), &img, square(16), &mut a);
            a != c
        });
        assert!(differs);
    }

    #[test]
    fn noise_has_the_asked_spread() {
        let xs = vec![0.0f32; 20_000];
        let mut out = vec![0.0f32; 20_000];
        augment_batch(
            Augment {
                noise: 0.5,
                shift: 0,
                flip: false,
            },
            (1, 0),
            &xs,
            ImageShape::flat(100),
            &mut out,
        );
        let n = out.len() as f64;
        let mean = out.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let sd = (out
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!(
            mean.abs() < 0.02 && (sd - 0.5).abs() < 0.02,
            "mean {mean}, sd {sd}"
        );
    }

    /// Every channel of a row moves by the same shift and flips with it.
    #[test]
    fn channels_shift_and_flip_together() {
        let image = ImageShape {
            channels: 3,
            height: 2,
            width: 5,
        };
        // Channel c's pixel (i, j) holds 100·c + 10·i + j.
        let xs: Vec<f32> = (0..3)
            .flat_map(|c| {
                (0..2).flat_map(move |i| (0..5).map(move |j| (100 * c + 10 * i + j) as f32))
            })
            .collect();
        for (shift, flip) in [(1, false), (0, true), (2, true)] {
            let aug = Augment {
                noise: 0.0,
                shift,
                flip,
            };
            for step in 0..20 {
                let mut out = vec![0.0f32; 30];
                augment_batch(aug, (8, step), &xs, image, &mut out);
                // Channels 1 and 2 are channel 0 plus 100 and 200 wherever it is not padding.
                for k in 0..10 {
                    let base = out[k];
                    for c in 1..3 {
                        let v = out[c * 10 + k];
                        assert!(
                            v == 0.0 && base == 0.0 || v == base + 100.0 * c as f32,
                            "{out:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn flip_mirrors_about_half_the_rows_and_each_row_the_same_on_every_call() {
        // 64 rows of a 3×3 image whose pixels are their indices.
        let img: Vec<f32> = (0..9).map(|i| i as f32).collect();
        let xs: Vec<f32> = img.iter().copied().cycle().take(64 * 9).collect();
        let aug = Augment {
            noise: 0.0,
            shift: 0,
            flip: true,
        };
        let mut out = vec![0.0f32; xs.len()];
        augment_batch(aug, (5, 11), &xs, square(9), &mut out);
        let mirrored: Vec<f32> = [2, 1, 0, 5, 4, 3, 8, 7, 6]
            .iter()
            .map(|&i| i as f32)
            .collect();
        let flips = out
            .chunks_exact(9)
            .map(|row| {
                assert!(row == img || row == mirrored, "{row:?}");
                row == mirrored
            })
            .filter(|&f| f)
            .count();
        assert!((16..=48).contains(&flips), "{flips} of 64 rows flipped");
        let mut again = vec![0.0f32; xs.len()];
        augment_batch(aug, (5, 11), &xs, square(9), &mut again);
        assert_eq!(out, again);
        augment_batch(aug, (5, 12), &xs, square(9), &mut again);
        assert_ne!(out, again, "another step draws other flips");
    }
}
