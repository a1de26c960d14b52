//! The CPU twin of one whole GAN training step (see models/gan.rs for the order of updates).

use super::{adam, gan_loss, mlp_backward, mlp_forward};
use crate::models::gan::{layers, GanConfig};
use crate::models::ParamLayout;
use crate::nn::AdamConfig;

pub struct GanStepOut {
    /// d_loss, g_loss, mean D(x), mean D(G(z))
    pub metrics: [f64; 4],
    pub grads: Vec<f64>,
    /// G(z) [B, 784]
    pub fake: Vec<f64>,
}

/// real [B, 784] already scaled to the output's range, z [B, latent]. Updates `values`, the
/// batch-norm `state`, `m` and `v` in place.
#[allow(clippy::too_many_arguments)]
pub fn gan_step(
    cfg: &GanConfig, layout: &ParamLayout, state_layout: &ParamLayout, values: &mut [f64], state: &mut [f64], m: &mut [f64], v: &mut [f64],
    real: &[f64], z: &[f64], batch: usize, t: u32, opt: &AdamConfig,
) -> GanStepOut {
    let (gen, disc) = layers(cfg);
    let gf = mlp_forward(&gen, layout, state_layout, values, state, z, batch);
    let fake = gf.out.last().unwrap().clone();
    let d_in: Vec<f64> = real.iter().chain(&fake).copied().collect();
    let df = mlp_forward(&disc, layout, state_layout, values, &mut [], &d_in, 2 * batch);
    let loss = gan_loss(df.out.last().unwrap(), batch, 1.0 - f64::from(cfg.label_smoothing), 0.0);
    let mut grads = vec![0.0; values.len()];
    mlp_backward(&disc, layout, state_layout, values, &d_in, &df, 2 * batch, loss.d_grad, Some(&mut grads), None);
    let widths: Vec<usize> = disc.iter().map(|l| l.out).collect();
    let fake_rows = df.rows(batch, batch, &widths);
    let d_fake = mlp_backward(&disc, layout, state_layout, values, &fake, &fake_rows, batch, loss.g_grad, None, Some(cfg.output.activation()));
    mlp_backward(&gen, layout, state_layout, values, z, &gf, batch, d_fake, Some(&mut grads), None);
    adam(values, &grads, m, v, t, opt);
    GanStepOut { metrics: loss.metrics, grads, fake }
}
