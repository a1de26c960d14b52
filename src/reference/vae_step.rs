//! The CPU twin of one whole VAE training step: same weights, batch and noise in; the loss
//! parts, gradients and updated weights out.

use super::{adam, bce_logits, columns, concat_columns, embedding_backward, embedding_forward, mlp_backward, one_hot_planes, mlp_forward, reparam_kl_backward, reparam_kl_forward};
use crate::models::vae::{input_widths, layers, VaeArch, VaeConfig, PRIOR_MEAN};
use crate::models::ParamLayout;
use crate::nn::AdamConfig;

pub struct VaeStepOut {
    /// Means over the batch of the per-image reconstruction BCE sum and KL term.
    pub recon: f64,
    pub kl: f64,
    pub grads: Vec<f64>,
}

/// x [rows, C·H·W] in [0, 1], eps [rows, latent], and (conditioned) the rows' `labels`. Updates
/// `values`, `m` and `v` in place with Adam at step `t`.
#[allow(clippy::too_many_arguments)]
pub fn vae_step(
    cfg: &VaeConfig, layout: &ParamLayout, values: &mut [f64], m: &mut [f64], v: &mut [f64], x: &[f64], eps: &[f64], labels: &[usize], rows: usize,
    t: u32, opt: &AdamConfig,
) -> VaeStepOut {
    let (enc, dec) = layers(cfg);
    let no_state = ParamLayout::default();
    let (latent, k) = (cfg.latent, cfg.label_width());
    assert_eq!(labels.len(), if k > 0 { rows } else { 0 }, "a label per row when conditioned");
    let one_hot = embedding_forward(labels, None, k);
    let (enc_width, dec_width) = input_widths(cfg);
    // [a | one-hot | zero padding to the stored width]
    let with_label = |a: &[f64], width: usize, stored: usize| {
        if k == 0 {
            return a.to_vec();
        }
        let pad = stored - width - k;
        concat_columns(&concat_columns(a, width, &one_hot, k), width + k, &vec![0.0; rows * pad], pad)
    };
    let scale = 1.0 / rows as f64;
    let image = cfg.image.values();
    // The conv encoder reads the label as k more image channels, one-hot planes after x's.
    let enc_in = match cfg.arch {
        VaeArch::Conv if k > 0 => concat_columns(x, image, &one_hot_planes(labels, k, cfg.image.pixels()), k * cfg.image.pixels()),
        _ => with_label(x, image, enc_width),
    };
    let ef = mlp_forward(&enc, layout, &no_state, values, &mut [], &enc_in, rows);
    let stats = ef.out.last().unwrap();
    let (offset, kl_row) = reparam_kl_forward(stats, eps, rows, latent);
    // With a class prior, z = m_y + the offset the KL term measures.
    let prior = layout.find(PRIOR_MEAN).map(|e| e.range());
    let z: Vec<f64> = match &prior {
        Some(r) => offset.iter().zip(embedding_forward(labels, Some(&values[r.clone()]), latent)).map(|(o, m)| o + m).collect(),
        None => offset,
    };
    let dec_in = with_label(&z, latent, dec_width);
    let df = mlp_forward(&dec, layout, &no_state, values, &mut [], &dec_in, rows);
    let (d_logits, recon_row) = bce_logits(df.out.last().unwrap(), x, rows, image, scale);
    let mut grads = vec![0.0; values.len()];
    let d_dec_in = mlp_backward(&dec, layout, &no_state, values, &dec_in, &df, rows, d_logits, Some(&mut grads), None);
    // The one-hot columns are constants; only z's columns carry gradient on.
    let dz = columns(&d_dec_in, dec_width, 0, latent);
    if let Some(r) = prior {
        grads[r].copy_from_slice(&embedding_backward(labels, &dz, k, latent));
    }
    let d_stats = reparam_kl_backward(stats, eps, &dz, rows, latent, scale);
    mlp_backward(&enc, layout, &no_state, values, &enc_in, &ef, rows, d_stats, Some(&mut grads), None);
    adam(values, &grads, m, v, t, opt);
    VaeStepOut { recon: recon_row.iter().sum::<f64>() * scale, kl: kl_row.iter().sum::<f64>() * scale, grads }
}
