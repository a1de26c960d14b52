//! The checks of `Settings` against each other and the model: one refusal a setting, each
//! message saying what to give instead.

use super::config::{ConfigError, ModelKind, Settings};
use crate::data::ImageOptions;

macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(ConfigError(format!($($arg)*)))
    };
}

impl Settings {
    /// Refuses values out of range and settings the model does not have.
    pub(super) fn check(&self, model: ModelKind, conditional: bool) -> Result<(), ConfigError> {
        let s = self;
        let gan = model.is_gan();
        if s.epochs == Some(0) {
            refuse!("--epochs must be at least 1");
        }
        if s.batch == Some(0) {
            refuse!("--batch must be at least 1");
        }
        ImageOptions { size: s.size, channels: s.channels, ..ImageOptions::default() }.check().map_err(|e| ConfigError(e.to_string()))?;
        if s.z_dim == Some(0) {
            refuse!("--z-dim must be at least 1");
        }
        for (name, rate) in [("--lr", s.lr), ("--d-lr", s.d_lr)] {
            if let Some(rate) = rate.filter(|l| !(l.is_finite() && *l > 0.0)) {
                refuse!("{name} must be a positive number, got {rate}");
            }
        }
        for (name, b) in [("--beta1", s.beta1), ("--beta2", s.beta2)] {
            if let Some(b) = b.filter(|b| !(0.0..1.0).contains(b)) {
                refuse!("{name} must be in [0, 1), got {b}");
            }
        }
        if let Some(w) = s.weight_decay.filter(|w| !(w.is_finite() && *w >= 0.0)) {
            refuse!("--weight-decay must be zero or positive, got {w}");
        }
        if let Some(decay) = s.g_ema.filter(|d| !(0.0..1.0).contains(d)) {
            refuse!("--g-ema must be in [0, 1) (0.999 is usual; 0 keeps no average), got {decay}");
        }
        if let Some(l) = s.label_smoothing.filter(|l| !(0.0..1.0).contains(l)) {
            refuse!("--label-smoothing must be in [0, 1), got {l}");
        }
        if s.limit == Some(0) {
            refuse!("--limit keeps N of the training images; give N of 1 or more");
        }
        if s.steps_per_submit.is_some_and(|n| n == 0 || n > 4096) {
            refuse!("--steps-per-submit must be between 1 and 4096");
        }
        if s.d_lr.is_some() && !gan {
            refuse!("--d-lr is for gan and dcgan: the discriminator's learning rate");
        }
        if s.g_ema.is_some() && !gan {
            refuse!("--g-ema is for gan and dcgan: an average of the generator");
        }
        if s.d_batchnorm.is_some() && model != ModelKind::Dcgan {
            refuse!("--d-batchnorm is for the dcgan; the MLP gan's discriminator has no batch norm");
        }
        if s.g_batchnorm.is_some() && model == ModelKind::Dcgan {
            refuse!("--g-batchnorm is for the MLP gan; the dcgan's batch norms are part of its architecture");
        }
        if s.keep_best == Some(true) && model == ModelKind::Classifier {
            refuse!("--keep-best is for the generative models: it keeps the epoch whose samples score the lowest FD");
        }
        if s.eval_samples.is_some_and(|n| n < 2) {
            refuse!("--eval-samples must be 2 or more: the FD compares the samples' spread with the test images'");
        }
        if s.keep_best == Some(true) && s.eval_every == Some(0) {
            refuse!("--keep-best picks the epoch by the FD of its samples, and --eval-every 0 scores none");
        }
        if (s.loss.is_some() || s.augment.is_some() || s.spectral_norm.is_some()) && !gan {
            refuse!("--loss, --augment and --spectral-norm are for gan and dcgan: they change how the discriminator judges");
        }
        if model == ModelKind::Classifier && conditional {
            refuse!("--conditional is for the generative models; a classifier already learns from the labels");
        }
        if s.projection == Some(true) && !(model.is_gan() && conditional) {
            refuse!("--projection is for `gan --conditional` and `dcgan --conditional`: it gives the discriminator a head per class");
        }
        if s.projection == Some(false) && model == ModelKind::Dcgan {
            refuse!("the dcgan's discriminator reads the image alone, so a conditional dcgan meets the label through its projection: --projection false is for the MLP gan");
        }
        Ok(())
    }
}
