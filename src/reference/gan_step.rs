//! The CPU twin of one whole GAN training step, in either order of updates (see models/gan.rs).

use super::{activate_grad_from_output, adam, diff_augment, diff_augment_backward, gan_hinge_loss, class_logit_backward, class_logit_forward, columns, concat_columns, ema, embedding_backward, embedding_forward, gan_loss, mlp_backward, mlp_forward, mlp_forward_grouped, spectral_forward, spectral_grads};
use crate::models::gan::{generator_state_range, input_widths, layers, network_ranges, GanConfig, UpdateOrder, D_EMBEDDING, G_EMBEDDING};
use crate::models::ParamLayout;
use crate::nn::{AdamConfig, GanLoss};

pub struct GanStepOut {
    /// d_loss, g_loss, mean D(x), mean D(G(z))
    pub metrics: [f64; 4],
    pub grads: Vec<f64>,
    /// G(z) [B, 784]
    pub fake: Vec<f64>,
}

/// `rows` with the vectors of `labels` from table `name` before (`first`) or after them, and
/// zero columns to `stored` in all (unconditioned: `rows` as they are).
#[allow(clippy::too_many_arguments)]
fn conditioned(layout: &ParamLayout, values: &[f64], name: &str, labels: &[usize], k: usize, rows: &[f64], width: usize, first: bool, stored: usize) -> Vec<f64> {
    if k == 0 {
        return rows.to_vec();
    }
    let vectors = embedding_forward(labels, Some(&values[layout.get(name).range()]), k);
    let joined = if first { concat_columns(&vectors, k, rows, width) } else { concat_columns(rows, width, &vectors, k) };
    let n = labels.len();
    concat_columns(&joined, width + k, &vec![0.0; n * (stored - width - k)], stored - width - k)
}

/// real [B, C·H·W] already scaled to the output's range, z [B, latent]; conditioned, `labels`
/// [2B] holds the real rows' classes then those G is asked for; augmented, `draws` [2B, 8] the
/// uniforms that pick each row's transform. Updates `values`, the batch-norm `state`, `m` and
/// `v` in place.
#[allow(clippy::too_many_arguments)]
pub fn gan_step(
    cfg: &GanConfig, layout: &ParamLayout, state_layout: &ParamLayout, values: &mut [f64], state: &mut [f64], m: &mut [f64], v: &mut [f64],
    real: &[f64], z: &[f64], labels: &[usize], draws: &[f64], batch: usize, t: u32, opt: &AdamConfig,
) -> GanStepOut {
    // G's label columns, and D's (none in the DCGAN's, whose D meets the label at its heads).
    let ((gen, disc), k, d_k, image) = (layers(cfg), cfg.label_width(), cfg.d_label_width(), cfg.image.values());
    assert_eq!(labels.len(), if k > 0 { 2 * batch } else { 0 }, "labels for every row when conditioned");
    let fake_labels = &labels[labels.len() / 2..];
    let (g_width, d_width) = input_widths(cfg);
    let g_in = conditioned(layout, values, G_EMBEDDING, fake_labels, k, z, cfg.latent, true, g_width);
    let gf = mlp_forward(&gen, layout, state_layout, values, state, &g_in, batch);
    let fake = gf.out.last().unwrap().clone();
    let images: Vec<f64> = real.iter().chain(&fake).copied().collect();
    let shape = (cfg.image.channels, cfg.image.side);
    // D sees every image through its row's transform.
    let images = if cfg.augment.is_none() { images } else { diff_augment(&images, draws, cfg.augment, shape) };
    let seen_fake = &images[batch * image..];
    let d_in = conditioned(layout, values, D_EMBEDDING, labels, d_k, &images, image, false, d_width);
    // Under spectral norm D's passes read W / σ, σ from a power iteration before each pass.
    let (d_values, d_spectral) = spectral_forward(&disc, layout, state_layout, values, state);
    // D's batch norm sees the real and the fake rows as two batches.
    let df = mlp_forward_grouped(&disc, layout, state_layout, &d_values, state, &d_in, 2 * batch, 2);
    // A projection discriminator's heads give the logit of each row's class.
    let logits_of = |heads: &[f64], labels: &[usize]| if cfg.projection { class_logit_forward(labels, heads) } else { heads.to_vec() };
    let to_heads = |d_logits: Vec<f64>, labels: &[usize]| if cfg.projection { class_logit_backward(labels, &d_logits, cfg.d_heads()) } else { d_logits };
    let objective = |logits: &[f64], real_label: f64| match cfg.loss {
        GanLoss::Bce => gan_loss(logits, batch, real_label, 0.0),
        GanLoss::Hinge => gan_hinge_loss(logits, batch),
    };
    let loss = objective(&logits_of(df.out.last().unwrap(), labels), 1.0 - f64::from(cfg.label_smoothing));
    let mut grads = vec![0.0; values.len()];
    let d_d_in = mlp_backward(&disc, layout, state_layout, &d_values, &d_in, &df, 2 * batch, to_heads(loss.d_grad, labels), Some(&mut grads), None);
    spectral_grads(&d_spectral, values, &mut grads);
    if d_k > 0 {
        let table = layout.get(D_EMBEDDING).range();
        grads[table].copy_from_slice(&embedding_backward(labels, &columns(&d_d_in, d_width, image, d_k), d_k, d_k));
    }
    let ((g_range, d_range), (g_opt, d_opt)) = (network_ranges(layout), cfg.adam(opt));
    let mut metrics = loss.metrics;
    let (judged, g_grad, d_values) = match cfg.update_order {
        UpdateOrder::GFirst => {
            let widths: Vec<usize> = disc.iter().map(|l| l.out).collect();
            (df.rows(batch, batch, &widths), to_heads(loss.g_grad, fake_labels), d_values)
        }
        UpdateOrder::DFirst => {
            let r = d_range.clone();
            adam(&mut values[r.clone()], &grads[r.clone()], &mut m[r.clone()], &mut v[r], t, &d_opt);
            // The updated D embeds the fake rows' labels afresh, as D(G(z), labels) would.
            let fake_in = conditioned(layout, values, D_EMBEDDING, fake_labels, d_k, seen_fake, image, false, d_width);
            let (d_values, _) = spectral_forward(&disc, layout, state_layout, values, state);
            let judged = mlp_forward(&disc, layout, state_layout, &d_values, state, &fake_in, batch);
            // G's part of the loss reads only the fake logits; the real half is a placeholder.
            let logits: Vec<f64> = vec![0.0; batch].into_iter().chain(logits_of(judged.out.last().unwrap(), fake_labels)).collect();
            let g_loss = objective(&logits, 1.0);
            metrics[1] = g_loss.metrics[1];
            (judged, to_heads(g_loss.g_grad, fake_labels), d_values)
        }
    };
    let fake_in = conditioned(layout, values, D_EMBEDDING, fake_labels, d_k, seen_fake, image, false, d_width);
    let d_fake_in = mlp_backward(&disc, layout, state_layout, &d_values, &fake_in, &judged, batch, g_grad, None, None);
    // Only the image columns lead back to G, through the augmentation and its output activation.
    let d_seen = columns(&d_fake_in, d_width, 0, image);
    let d_seen = if cfg.augment.is_none() { d_seen } else { diff_augment_backward(&d_seen, &draws[8 * batch..], cfg.augment, shape) };
    let act = cfg.output.activation();
    let d_fake: Vec<f64> = d_seen.iter().zip(&fake).map(|(&d, &y)| d * activate_grad_from_output(y, act)).collect();
    let d_g_in = mlp_backward(&gen, layout, state_layout, values, &g_in, &gf, batch, d_fake, Some(&mut grads), None);
    if k > 0 {
        let table = layout.get(G_EMBEDDING).range();
        grads[table].copy_from_slice(&embedding_backward(fake_labels, &columns(&d_g_in, g_width, 0, k), k, k));
    }
    let mut updates = vec![(g_range, g_opt)];
    if cfg.update_order == UpdateOrder::GFirst {
        updates.push((d_range, d_opt));
    }
    for (r, o) in updates {
        adam(&mut values[r.clone()], &grads[r.clone()], &mut m[r.clone()], &mut v[r], t, &o);
    }
    GanStepOut { metrics, grads, fake }
}

/// The step's update of G's moving average (`cfg.g_ema`), after `gan_step` updated `values`
/// and `state`: the GPU's "generator.average" phase. `average` and `average_state` are laid
/// out as `values` and `state`; outside G they are left alone.
#[allow(clippy::too_many_arguments)]
pub fn gan_average(
    cfg: &GanConfig, layout: &ParamLayout, state_layout: &ParamLayout, values: &[f64], state: &[f64], average: &mut [f64], average_state: &mut [f64], t: u32,
) {
    let Some(decay) = cfg.g_ema else { return };
    let g = network_ranges(layout).0;
    ema(&mut average[g.clone()], &values[g], f64::from(decay), t);
    let s = generator_state_range(state_layout);
    ema(&mut average_state[s.clone()], &state[s], f64::from(decay), t);
}
