//! The CPU twin of one classifier training step: the batch shifted by the drawn offsets, the
//! forward with batch statistics, softmax cross-entropy, the backward and Adam at the step's
//! share of the learning rate.

use super::{adam_scaled, mlp_backward, mlp_forward, shift_images, softmax_cross_entropy};
use crate::models::classifier::{layers, ClassifierConfig};
use crate::models::ParamLayout;
use crate::nn::AdamConfig;

pub struct ClassifierStepOut {
    /// The batch the network saw, after the shifts: [rows, 784]
    pub x: Vec<f64>,
    /// Means over the batch
    pub loss: f64,
    pub accuracy: f64,
    pub grads: Vec<f64>,
}

/// `images` [rows, 784] in [0, 1] as gathered, `shifts` [rows, 2] as drawn (dy and dx plus the
/// largest shift), the rows' `labels`. Updates `values`, the batch-norm `state`, `m` and `v` in
/// place with Adam at step `t` and `lr_scale` times its rate.
#[allow(clippy::too_many_arguments)]
pub fn classifier_step(
    cfg: &ClassifierConfig, layout: &ParamLayout, state_layout: &ParamLayout, values: &mut [f64], state: &mut [f64], m: &mut [f64], v: &mut [f64],
    images: &[f64], shifts: &[f64], labels: &[usize], rows: usize, t: u32, opt: &AdamConfig, lr_scale: f64,
) -> ClassifierStepOut {
    let net = layers(cfg);
    let x = if cfg.shift > 0 { shift_images(images, shifts, (cfg.image.channels, cfg.image.side, cfg.image.side), cfg.shift) } else { images.to_vec() };
    let fwd = mlp_forward(&net, layout, state_layout, values, state, &x, rows);
    let (d_logits, loss, correct) = softmax_cross_entropy(fwd.out.last().expect("a classifier has layers"), labels, rows, cfg.classes, 1.0 / rows as f64);
    let mut grads = vec![0.0; values.len()];
    mlp_backward(&net, layout, state_layout, values, &x, &fwd, rows, d_logits, Some(&mut grads), None);
    adam_scaled(values, &grads, m, v, t, opt, lr_scale);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / rows as f64;
    ClassifierStepOut { loss: mean(&loss), accuracy: mean(&correct), grads, x }
}
