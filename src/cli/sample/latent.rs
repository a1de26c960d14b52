//! `wgen sample`'s walks through the latent space or noise: interpolations between random
//! pairs (or from class to class) and a 2-D VAE's latent manifold.

use std::path::Path;

use anyhow::{bail, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::{asked_class, class_layout, decode, layout_or, Model, SampleArgs};
use crate::gpu::Gpu;
use crate::nn::StepBuffer;

/// --interpolate: rows of noise interpolations, or (conditioned, no --class) fixed noise per
/// row walking from class r to r + 1. Returns the images and the grid's columns.
pub(super) fn interpolations(gpu: &Gpu, a: &SampleArgs, model: &Model, path: &Path, step: &StepBuffer) -> Result<(Vec<f32>, usize)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let class = asked_class(a, model, path)?;
    let across_classes = model.classes().filter(|_| class.is_none());
    let (rows, cols) = match across_classes {
        Some(k) => class_layout(a, k)?,
        None => layout_or(a, 8, 10)?,
    };
    let dim = match model {
        Model::Vae(v) => v.config.latent,
        Model::Gan(g) => g.config.latent,
    };
    let spherical = matches!(model, Model::Gan(_));
    let vectors = model.class_vectors(gpu)?;
    let (mut z, mut cond) = (Vec::with_capacity(rows * cols * dim), Vec::new());
    for r in 0..rows {
        let from: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        let to: Vec<f32> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        for j in 0..cols {
            let t = j as f32 / (cols - 1).max(1) as f32;
            match across_classes {
                Some(k) => {
                    z.extend(&from);
                    cond.extend(between(&vectors[r % k], &vectors[(r + 1) % k], t, false));
                }
                None => {
                    z.extend(between(&from, &to, t, spherical));
                    if let Some(c) = class {
                        cond.extend(&vectors[c]);
                    }
                }
            }
        }
    }
    Ok((decode(gpu, model, &z, &cond, rows * cols, step)?, cols))
}

/// --manifold: a 2-D VAE's latent plane at the normal's quantiles (one class's, conditioned).
pub(super) fn manifold(gpu: &Gpu, a: &SampleArgs, model: &Model, path: &Path, step: &StepBuffer) -> Result<(Vec<f32>, usize)> {
    let Model::Vae(vae) = model else { bail!("--manifold needs a VAE; {} is a GAN", path.display()) };
    if vae.config.latent != 2 {
        bail!("--manifold needs a 2-D latent space; {} has {} dimensions (train with --z-dim 2)", path.display(), vae.config.latent);
    }
    let cond = match (asked_class(a, model, path)?, model.classes()) {
        (Some(c), _) => model.class_vectors(gpu)?[c].clone(),
        (None, Some(_)) => bail!("--manifold of a conditional VAE draws one class's latent plane: add --class K"),
        (None, None) => Vec::new(),
    };
    let (rows, cols) = layout_or(a, 20, 20)?;
    let q = |i: usize, n: usize| inverse_normal_cdf(0.05 + 0.9 * i as f64 / (n - 1).max(1) as f64) as f32;
    let z: Vec<f32> = (0..rows).flat_map(|r| (0..cols).flat_map(move |c| [q(c, cols), q(rows - 1 - r, rows)])).collect();
    let cond: Vec<f32> = cond.iter().copied().cycle().take(cond.len() * rows * cols).collect();
    Ok((decode(gpu, model, &z, &cond, rows * cols, step)?, cols))
}

/// The point a fraction `t` of the way from `a` to `b`, along the great circle for noise
/// (whose mass lies near a sphere) or the straight line for a VAE's latents.
fn between(a: &[f32], b: &[f32], t: f32, spherical: bool) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let cos = (a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if !spherical || omega.sin().abs() < 1e-6 {
        return a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    }
    let (wa, wb) = (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin());
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error below 1.2e-9).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.383_577_518_672_69e2, -3.066479806614716e1, 2.506_628_277_459_239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0);
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}
