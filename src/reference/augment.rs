//! DiffAugment's transforms (shaders/diff_augment.wgsl), written out step by step as
//! DiffAugment's PyTorch code runs them: brightness, saturation, contrast, translation,
//! cutout; the backward runs each step's transpose in reverse.

use crate::nn::AugmentPolicy;

/// One image's transform, decoded from its eight draws as the kernel decodes them.
struct Transform {
    bright: f64,
    sat: f64,
    contrast: f64,
    shift: (isize, isize),
    /// The cutout square's first row and column, and its side (0: none).
    cut: (isize, isize, isize),
}

/// The whole number ⌊u·n⌋ in [0, n) of a draw u in (0, 1).
fn whole(u: f64, n: usize) -> isize {
    ((u as f32 * n as f32) as usize).min(n - 1) as isize
}

fn transform(policy: AugmentPolicy, u: &[f64], side: usize) -> Transform {
    let mut t = Transform { bright: 0.0, sat: 1.0, contrast: 1.0, shift: (0, 0), cut: (0, 0, 0) };
    if policy.color {
        // As f32, the kernel's precision, so both decode the same transform.
        t.bright = f64::from(u[0] as f32 - 0.5);
        t.sat = f64::from(2.0 * u[1] as f32);
        t.contrast = f64::from(u[2] as f32 + 0.5);
    }
    if policy.translation {
        let most = (side + 4) / 8;
        t.shift = (whole(u[3], 2 * most + 1) - most as isize, whole(u[4], 2 * most + 1) - most as isize);
    }
    if policy.cutout {
        let q = side.div_ceil(2);
        let span = side + 1 - q % 2;
        t.cut = (whole(u[5], span) - (q / 2) as isize, whole(u[6], span) - (q / 2) as isize, q as isize);
    }
    t
}

/// Whether output pixel (h, w) falls inside the cutout square.
fn cut(t: &Transform, h: isize, w: isize) -> bool {
    let (y, x, q) = t.cut;
    (y..y + q).contains(&h) && (x..x + q).contains(&w)
}

/// (output index, source index) within an image of each value that translation and cutout
/// keep; the others are 0.
fn kept(t: &Transform, channels: usize, side: usize) -> Vec<(usize, usize)> {
    let s = side as isize;
    let mut pairs = Vec::new();
    for c in 0..channels {
        for h in 0..s {
            for w in 0..s {
                let (sh, sw) = (h + t.shift.0, w + t.shift.1);
                if (0..s).contains(&sh) && (0..s).contains(&sw) && !cut(t, h, w) {
                    pairs.push((c * side * side + (h * s + w) as usize, c * side * side + (sh * s + sw) as usize));
                }
            }
        }
    }
    pairs
}

/// images [rows, C·S·S], draws [rows, 8] uniforms in (0, 1): each image through its transform.
pub fn diff_augment(images: &[f64], draws: &[f64], policy: AugmentPolicy, (channels, side): (usize, usize)) -> Vec<f64> {
    let (plane, n) = (side * side, channels * side * side);
    let mut out = vec![0.0; images.len()];
    for (r, x) in images.chunks(n).enumerate() {
        let t = transform(policy, &draws[8 * r..8 * r + 8], side);
        let bright: Vec<f64> = x.iter().map(|v| v + t.bright).collect();
        let mut sat = bright.clone();
        for q in 0..plane {
            let mean = (0..channels).map(|c| bright[c * plane + q]).sum::<f64>() / channels as f64;
            for c in 0..channels {
                sat[c * plane + q] = (bright[c * plane + q] - mean) * t.sat + mean;
            }
        }
        let mean = sat.iter().sum::<f64>() / n as f64;
        let color: Vec<f64> = sat.iter().map(|v| (v - mean) * t.contrast + mean).collect();
        for (o, source) in kept(&t, channels, side) {
            out[r * n + o] = color[source];
        }
    }
    out
}

/// The gradient at the images from `dy` [rows, C·S·S], the gradient at their transforms.
pub fn diff_augment_backward(dy: &[f64], draws: &[f64], policy: AugmentPolicy, (channels, side): (usize, usize)) -> Vec<f64> {
    let (plane, n) = (side * side, channels * side * side);
    let mut dx = vec![0.0; dy.len()];
    for (r, g) in dy.chunks(n).enumerate() {
        let t = transform(policy, &draws[8 * r..8 * r + 8], side);
        // Cutout and translation: each kept output's gradient goes back to its source.
        let mut d_color = vec![0.0; n];
        for (o, source) in kept(&t, channels, side) {
            d_color[source] += g[o];
        }
        // Contrast: k·v + (1 − k)·mean(v).
        let total = d_color.iter().sum::<f64>();
        let d_sat: Vec<f64> = d_color.iter().map(|d| t.contrast * d + (1.0 - t.contrast) * total / n as f64).collect();
        // Saturation: s·v + (1 − s)·mean over the pixel's channels; brightness passes it on.
        let d = &mut dx[r * n..(r + 1) * n];
        for q in 0..plane {
            let pixel = (0..channels).map(|c| d_sat[c * plane + q]).sum::<f64>() / channels as f64;
            for c in 0..channels {
                d[c * plane + q] = t.sat * d_sat[c * plane + q] + (1.0 - t.sat) * pixel;
            }
        }
    }
    dx
}
