//! The CPU twin of one whole VAE training step: same weights, batch and noise in; the loss
//! parts, gradients and updated weights out.

use super::{adam, bce_logits, mlp_backward, mlp_forward, reparam_kl_backward, reparam_kl_forward};
use crate::models::vae::{layers, VaeConfig, IMAGE};
use crate::models::ParamLayout;
use crate::nn::AdamConfig;

pub struct VaeStepOut {
    /// Means over the batch of the per-image reconstruction BCE sum and KL term.
    pub recon: f64,
    pub kl: f64,
    pub grads: Vec<f64>,
}

/// x [rows, 784] in [0, 1], eps [rows, latent]. Updates `values`, `m` and `v` in place with
/// Adam at step `t`.
#[allow(clippy::too_many_arguments)]
pub fn vae_step(
    cfg: &VaeConfig, layout: &ParamLayout, values: &mut [f64], m: &mut [f64], v: &mut [f64], x: &[f64], eps: &[f64], rows: usize, t: u32,
    opt: &AdamConfig,
) -> VaeStepOut {
    let (enc, dec) = layers(cfg);
    let no_state = ParamLayout::default();
    let latent = cfg.latent;
    let scale = 1.0 / rows as f64;
    let ef = mlp_forward(&enc, layout, &no_state, values, &mut [], x, rows);
    let stats = ef.out.last().unwrap();
    let (z, kl_row) = reparam_kl_forward(stats, eps, rows, latent);
    let df = mlp_forward(&dec, layout, &no_state, values, &mut [], &z, rows);
    let (d_logits, recon_row) = bce_logits(df.out.last().unwrap(), x, rows, IMAGE, scale);
    let mut grads = vec![0.0; values.len()];
    let dz = mlp_backward(&dec, layout, &no_state, values, &z, &df, rows, d_logits, Some(&mut grads), None);
    let d_stats = reparam_kl_backward(stats, eps, &dz, rows, latent, scale);
    mlp_backward(&enc, layout, &no_state, values, x, &ef, rows, d_stats, Some(&mut grads), None);
    adam(values, &grads, m, v, t, opt);
    VaeStepOut { recon: recon_row.iter().sum::<f64>() * scale, kl: kl_row.iter().sum::<f64>() * scale, grads }
}
