//! The CPU twin of one whole GAN training step, in either order of updates (see models/gan.rs).

use super::{adam, gan_loss, mlp_backward, mlp_forward};
use crate::models::gan::{layers, network_ranges, GanConfig, UpdateOrder};
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
    let (g_range, d_range) = network_ranges(layout);
    let mut metrics = loss.metrics;
    let (judged, g_grad) = match cfg.update_order {
        UpdateOrder::GFirst => {
            let widths: Vec<usize> = disc.iter().map(|l| l.out).collect();
            (df.rows(batch, batch, &widths), loss.g_grad)
        }
        UpdateOrder::DFirst => {
            let r = d_range.clone();
            adam(&mut values[r.clone()], &grads[r.clone()], &mut m[r.clone()], &mut v[r], t, opt);
            let judged = mlp_forward(&disc, layout, state_layout, values, &mut [], &fake, batch);
            // G's part of the loss reads only the fake logits; the real half is a placeholder.
            let logits: Vec<f64> = vec![0.0; batch].into_iter().chain(judged.out.last().unwrap().iter().copied()).collect();
            let g_loss = gan_loss(&logits, batch, 1.0, 0.0);
            metrics[1] = g_loss.metrics[1];
            (judged, g_loss.g_grad)
        }
    };
    let d_fake = mlp_backward(&disc, layout, state_layout, values, &fake, &judged, batch, g_grad, None, Some(cfg.output.activation()));
    mlp_backward(&gen, layout, state_layout, values, z, &gf, batch, d_fake, Some(&mut grads), None);
    let update = match cfg.update_order {
        UpdateOrder::GFirst => 0..values.len(),
        UpdateOrder::DFirst => g_range,
    };
    adam(&mut values[update.clone()], &grads[update.clone()], &mut m[update.clone()], &mut v[update], t, opt);
    GanStepOut { metrics, grads, fake }
}
