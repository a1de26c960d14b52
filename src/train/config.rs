//! The settings of a run: `TrainConfig`, every setting checked and written to `config.json`,
//! and `Settings`, what a user gives (the command line's flags over its `--config` file, the
//! browser page's form), turned into a `TrainConfig` by `Settings::build`, the one place where
//! defaults are chosen and values checked.

use std::path::PathBuf;

use crate::data::{Background, ImageOptions};
use crate::models::classifier::ClassifierConfig;
use crate::models::gan::{GanConfig, Output, UpdateOrder};
use crate::models::vae::{VaeArch, VaeConfig};
use crate::models::Init;
use crate::nn::{Activation, AdamConfig, AugmentPolicy, GanLoss, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Vae,
    /// The VAE with convolutional encoder and decoder.
    #[serde(rename = "conv-vae")]
    ConvVae,
    Gan,
    /// The GAN with convolutional generator and discriminator (DCGAN).
    Dcgan,
    /// The digit classifier that `wgen eval` measures samples with.
    Classifier,
}

/// How the learning rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The configured rate throughout.
    #[default]
    Constant,
    /// From the configured rate at the first step down towards 0 at the last, in a straight
    /// line (torch's LambdaLR with 1 − step/steps): the classifier ends on small steps, so its
    /// last epoch's weights are not one noisy draw among many.
    Linear,
}

impl Schedule {
    /// The factor at 1-based step `t` of `total`.
    pub fn factor(self, t: u32, total: u64) -> f32 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::Linear => (1.0 - f64::from(t - 1) / total.max(1) as f64).max(0.0) as f32,
        }
    }
}

impl ModelKind {
    /// The name the user types (`wgen train vae`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Vae => "vae",
            ModelKind::ConvVae => "conv-vae",
            ModelKind::Gan => "gan",
            ModelKind::Dcgan => "dcgan",
            ModelKind::Classifier => "classifier",
        }
    }

    /// Trained by the VAE's loop.
    pub fn is_vae(self) -> bool {
        matches!(self, ModelKind::Vae | ModelKind::ConvVae)
    }

    /// Trained by the GAN's loop.
    pub fn is_gan(self) -> bool {
        matches!(self, ModelKind::Gan | ModelKind::Dcgan)
    }
}

/// Every setting of a run, checked; written to `config.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub model: ModelKind,
    pub epochs: u32,
    pub batch: usize,
    pub adam: AdamConfig,
    /// Every Adam's rate follows it (runs from before it: constant).
    #[serde(default)]
    pub lr_schedule: Schedule,
    pub seed: u64,
    /// None: the built-in mnist-10k
    pub data: Option<PathBuf>,
    /// How a folder's images are read (IDX files: resized only where asked).
    #[serde(default)]
    pub images: ImageOptions,
    /// Train on this many of the training images, spread evenly over the classes (the test
    /// split and the judge's data stay whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    pub out: PathBuf,
    /// Also write model.safetensors every this many epochs (0: only at the end).
    pub checkpoint_every: u32,
    /// Score `eval_samples` samples with a classifier every this many epochs (0: never; None:
    /// every `EVAL_EVERY` when a classifier is at hand, decided when the data are read).
    #[serde(default)]
    pub eval_every: Option<u32>,
    /// How many samples each scoring draws (runs from before the setting drew `EVAL_SAMPLES`).
    #[serde(default = "eval_samples")]
    pub eval_samples: usize,
    /// The classifier's model.safetensors for `eval_every` (None: the one `judge::find` picks).
    #[serde(default)]
    pub classifier_path: Option<PathBuf>,
    /// Keep the model of the epoch with the lowest FD as model-best.safetensors (None: for a
    /// GAN whose samples are scored, decided with `eval_every`).
    #[serde(default)]
    pub keep_best: Option<bool>,
    pub steps_per_submit: usize,
    /// Keep the training images in host memory and write each submit's batches to the GPU as
    /// it goes; without it they stream only when one storage binding cannot hold them.
    #[serde(default)]
    pub stream: bool,
    /// Condition the model on the data's labels; the class count is set from the data when
    /// training starts (`VaeConfig::classes`, `GanConfig::classes`).
    #[serde(default)]
    pub conditional: bool,
    pub vae: Option<VaeConfig>,
    pub gan: Option<GanConfig>,
    #[serde(default)]
    pub classifier: Option<ClassifierConfig>,
    /// Which settings the user gave, so that a default the data decides (`train::fit_to_data`:
    /// the DCGAN's rates at 32 and 64, a batch larger than the data) leaves them be. Not
    /// written: a saved config holds the values used.
    #[serde(skip)]
    pub given: Given,
}

/// What a `config.json` without `eval_samples` drew.
fn eval_samples() -> usize {
    super::EVAL_SAMPLES
}

/// `--lr`, `--d-lr` and `--batch`, given or not.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Given {
    pub lr: bool,
    pub d_lr: bool,
    pub batch: bool,
}

impl TrainConfig {
    /// The defaults of `model` (VAE: Adam 1e-3, batch 128; GAN: Adam with betas (0.5, 0.999),
    /// batch 64, both networks at `MLP_GAN_LR`; the DCGAN's G at 4e-4, `GanConfig::dcgan` says
    /// why). `Settings::build` starts from them.
    pub fn defaults(model: ModelKind) -> TrainConfig {
        let vae = model.is_vae();
        let gan = model.is_gan();
        let gan_lr = if model == ModelKind::Dcgan { 4e-4 } else { MLP_GAN_LR };
        TrainConfig {
            model,
            epochs: 10,
            batch: if gan { 64 } else { 128 },
            adam: if gan { AdamConfig::new(gan_lr, 0.5, 0.999) } else { AdamConfig::new(1e-3, 0.9, 0.999) },
            lr_schedule: if model == ModelKind::Classifier { Schedule::Linear } else { Schedule::Constant },
            seed: 0,
            data: None,
            images: ImageOptions::default(),
            limit: None,
            out: PathBuf::from("runs"),
            checkpoint_every: 5,
            eval_every: (model == ModelKind::Classifier).then_some(0),
            eval_samples: super::EVAL_SAMPLES,
            classifier_path: None,
            keep_best: None,
            steps_per_submit: 16,
            stream: false,
            conditional: false,
            vae: vae.then(|| VaeConfig { arch: if model == ModelKind::ConvVae { VaeArch::Conv } else { VaeArch::Mlp }, ..VaeConfig::default() }),
            gan: gan.then(|| if model == ModelKind::Dcgan { GanConfig::dcgan() } else { GanConfig::mlp() }),
            classifier: (model == ModelKind::Classifier).then(ClassifierConfig::default),
            given: Given::default(),
        }
    }

    /// The defaults of a model conditioned on the labels, as `wgen train MODEL --conditional`
    /// gives them: the CVAE's small latent, the GAN's projection discriminator at the rate its
    /// study measured, `CONDITIONAL_GAN_LR`. The class count is set when the data are read.
    pub fn conditioned(mut self) -> TrainConfig {
        self.conditional = true;
        if let Some(v) = self.vae.as_mut() {
            v.latent = CVAE_LATENT;
        }
        if let Some(g) = self.gan.as_mut() {
            g.projection = true;
        }
        // The DCGAN keeps its own rates until a study of its conditional form says otherwise.
        if self.model == ModelKind::Gan {
            self.adam.lr = CONDITIONAL_GAN_LR;
        }
        self
    }

    /// `count` consecutive steps from global step `first` (0-based), batches taken in order
    /// through an epoch of `epoch_steps` steps.
    pub fn steps(&self, first: u32, count: usize, epoch_steps: usize) -> Vec<Step> {
        (0..count as u32)
            .map(|i| {
                let t = first + i + 1;
                let (adam_bc1, adam_bc2) = self.adam.bias_corrections(t);
                let batch_start = ((t - 1) as usize % epoch_steps.max(1) * self.batch) as u32;
                let lr_scale = self.lr_schedule.factor(t, u64::from(self.epochs) * epoch_steps as u64);
                Step { t, rng_step: t - 1, batch_start, adam_bc1, adam_bc2, lr_scale, ..Step::default() }
            })
            .collect()
    }
}

/// The MLP GAN's Adam rate, G's and D's. At pytorch/examples' 2e-4, 50 epochs of the 9,000
/// built-in digits are 7,000 steps, and samples stay blobs read as 8s until about epoch 25:
/// seeds 1 and 2 ended with 8 classes at ≥ 5%. At 6e-4 every seed covers all 10 classes from
/// epoch 20 on and FD at epoch 50 falls from 108–150 to 34–35 (docs/studies/gan.md).
pub const MLP_GAN_LR: f32 = 6e-4;

/// The conditional GAN's rate: its study (docs/studies/conditional.md) ran at 2e-4, and the
/// faster rate was measured on the unconditional GAN only.
pub const CONDITIONAL_GAN_LR: f32 = 2e-4;

/// The conditional VAEs' default latent size, the MLP's and the conv's: samples are the
/// asked-for class ≥ 90% of the time. For the conv CVAE (docs/studies/conditional.md, its
/// PyTorch twin after 10 epochs) z4 and z8 have better bounds and FD but fell to 86% and 84% of
/// samples in the asked-for class on seed 1, and z16 and z32 to 74–78% on seed 0.
pub const CVAE_LATENT: usize = 2;


/// A setting a user gave that cannot be: the message names the setting and what to give.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub(super) String);

macro_rules! settings {
    ($($(#[doc = $doc:literal])* [$($arg:tt)*] $field:ident: $ty:ty,)+) => {
        /// What a user may set, each `None` for the model's default: `wgen train`'s flags (the
        /// docs below are their help), the keys of its `--config` TOML file (the same names),
        /// and the browser page's form.
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
        #[cfg_attr(not(target_arch = "wasm32"), derive(clap::Args))]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Settings {
            $($(#[doc = $doc])* #[cfg_attr(not(target_arch = "wasm32"), arg($($arg)*))] pub $field: Option<$ty>,)+
        }

        impl Settings {
            /// These settings where given, `base`'s where not (flags over a config file).
            pub fn over(self, base: Settings) -> Settings {
                Settings { $($field: self.$field.or(base.$field),)+ }
            }
        }
    };
}

settings! {
    /// The model to train (or `model = "vae"` in the config file).
    [value_enum] model: ModelKind,
    /// Passes over the training split [default: 10].
    [long] epochs: u32,
    /// Images per step [default: 128 for vae and conv-vae, 64 for gan and dcgan].
    [long] batch: usize,
    /// Adam's learning rate [default: 1e-3 for vae, 6e-4 for gan (2e-4 conditioned), 4e-4 for the dcgan's G
    /// (2e-4 on 32×32 and 64×64 images: pytorch/examples'); its D has its own, --d-lr].
    [long] lr: f32,
    /// The learning rate over the run: constant, or linear from --lr down to 0 at the last step
    /// [default: linear for classifier, constant for the others].
    [long, value_enum] lr_schedule: Schedule,
    /// Adam's beta1 [default: 0.9 for vae, 0.5 for gan].
    [long] beta1: f32,
    /// Adam's beta2 [default: 0.999].
    [long] beta2: f32,
    /// Decoupled weight decay (AdamW); 0 is plain Adam [default: 0].
    [long] weight_decay: f32,
    /// Seed of the weights, the shuffles and every noise draw [default: 0].
    [long] seed: u64,
    /// A folder of PNG or JPEG images, searched recursively, a subfolder per class (or flat:
    /// unlabelled); or one with the four MNIST-format files [default: the built-in 9,000/1,000
    /// MNIST digits].
    [long] data: PathBuf,
    /// Train on N×N images: each is resized on its short side and centre-cropped [default: the
    /// size every image of --data shares].
    [long, value_name = "N"] size: usize,
    /// 1 (grey) or 3 (RGB) [default: 1 if every image is grey, else 3].
    [long] channels: usize,
    /// What transparent pixels are laid over: black, white, grey or #rrggbb [default: black].
    [long, value_name = "COLOUR"] background: Background,
    /// Train on N of the training images, spread evenly over the classes; the test split and
    /// the classifier that scores samples see all of the data [default: all].
    [long, value_name = "N"] limit: usize,
    /// Output folder [default: runs/<model>-N, the first N not taken].
    [long] out: PathBuf,
    /// Write checkpoints every N epochs as well as at the end; 0: only at the end [default: 5].
    [long] checkpoint_every: u32,
    /// Score samples every N epochs (FD, IS, classes covered) [default: 5 when a classifier is
    /// at hand (the built-in one for the built-in digits, --classifier, or one cached for
    /// --data), else 0: never]. Given for data with no classifier, wgen trains one once.
    [long] eval_every: u32,
    /// Samples drawn at each scoring [default: 5000]: fewer score sooner, but an FD depends on
    /// how many samples it compares, so compare runs scored alike.
    [long, value_name = "N"] eval_samples: usize,
    /// A classifier's model.safetensors (from `wgen train classifier`), for --eval-every
    /// [default: the one for the data, see --eval-every].
    [long] classifier: PathBuf,
    /// Write model-best.safetensors whenever a scored epoch beats every earlier one on FD
    /// [default: true for gan and dcgan when samples are scored, else false].
    [long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"] keep_best: bool,
    /// Training steps recorded into one command buffer [default: 16].
    [long] steps_per_submit: usize,
    /// Keep the training images in host memory and stream each submit's batches to the GPU
    /// (less GPU memory) [default: only when they exceed one storage binding].
    [long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"] stream: bool,
    /// Weight initialisation [default: torch].
    [long, value_enum] init: Init,
    /// Latent size: the VAE's z or the GAN's noise [default: 32 for vae and conv-vae, 2 for vae
    /// --conditional and conv-vae --conditional, 100 for gan and dcgan].
    [long] z_dim: usize,
    /// GAN: the generator's hidden activation: identity, relu, leaky_relu[:SLOPE], sigmoid, tanh
    /// [default: leaky_relu:0.2].
    [long] g_activation: Activation,
    /// GAN: the discriminator's hidden activation [default: leaky_relu:0.2].
    [long] d_activation: Activation,
    /// GAN: batch norm after the generator's hidden layers but the first [default: true].
    [long] g_batchnorm: bool,
    /// GAN: the generator's output; tanh trains on data in [-1, 1], sigmoid on [0, 1]
    /// [default: tanh].
    [long, value_enum] output: Output,
    /// GAN: the discriminator's target for real images is 1 - this [default: 0].
    [long] label_smoothing: f32,
    /// GAN: the discriminator's learning rate [default: --lr; dcgan: 2e-5 (2e-4 on 32×32 and
    /// 64×64 images)].
    [long] d_lr: f32,
    /// GAN: keep an exponential moving average of the generator with this decay (e.g. 0.999,
    /// warmed up as min(decay, t/(9+t))); samples, evaluations and model.safetensors use it in
    /// place of G's last weights; 0 keeps none [default: 0.999].
    [long, value_name = "DECAY"] g_ema: f32,
    /// DCGAN: batch norm after the discriminator's second conv [default: true].
    [long] d_batchnorm: bool,
    /// GAN: which network each step updates first; d-first judges G by the updated D
    /// [default: d-first].
    [long, value_enum] update_order: UpdateOrder,
    /// GAN: the objective: bce (D's logit through a sigmoid, G's loss non-saturating) or hinge
    /// (D's max(0, 1 − D(x)) + max(0, 1 + D(G(z))), G's −D(G(z))) [default: bce].
    [long, value_enum] loss: GanLoss,
    /// GAN: DiffAugment's transforms on every image D sees, real or generated, G's gradient
    /// passed back through them: a comma list of color, translation and cutout, or none
    /// [default: none].
    [long, value_name = "POLICY"] augment: AugmentPolicy,
    /// GAN: spectral norm on every weight of the discriminator, W / σ(W) with σ from one power
    /// iteration per pass (Miyato et al. 2018), beside its batch norm if it has one
    /// [default: false].
    [long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"] spectral_norm: bool,
    /// vae, gan, dcgan: condition on the digit's class, so samples can be asked for one (the
    /// CVAE's one-hot; PyTorch-GAN cgan's label embeddings in G). The classes are the data's
    /// labels.
    [long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"] conditional: bool,
    /// Conditional gan: a projection discriminator, whose logit adds a head for the row's class
    /// to a shared head (Miyato & Koyama 2018); false gives PyTorch-GAN's cgan, whose D sees
    /// the label only beside the image [default: true with --conditional; the dcgan's D has no
    /// other way to meet the label].
    [long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"] projection: bool,
    /// Conditional vae: a learned prior mean per class, p(z|y) = N(m_y, I), instead of N(0, I)
    /// for every class [default: false].
    [long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"] class_prior: bool,
}

impl Settings {
    /// The model's defaults overridden by these settings, every one checked.
    pub fn build(&self) -> Result<TrainConfig, ConfigError> {
        let Some(model) = self.model else {
            return Err(ConfigError("which model? `wgen train vae` or `wgen train gan` (or `model = \"vae\"` in --config)".into()));
        };
        let conditional = self.conditional.unwrap_or(false);
        self.check(model, conditional)?;
        let plain = TrainConfig::defaults(model);
        let defaults = if conditional { plain.conditioned() } else { plain };
        let adam = &defaults.adam;
        let lr = self.lr.unwrap_or(adam.lr);
        let weight_decay = self.weight_decay.unwrap_or(adam.weight_decay);
        let init = self.init.unwrap_or(Init::Torch);
        let name = model.name();
        let out = match &self.out {
            Some(out) => out.clone(),
            None => (1..).map(|n| PathBuf::from(format!("runs/{name}-{n}"))).find(|p| !p.exists()).expect("some name is free"),
        };
        let s = self;
        Ok(TrainConfig {
            model,
            epochs: s.epochs.unwrap_or(defaults.epochs),
            batch: s.batch.unwrap_or(defaults.batch),
            adam: AdamConfig { weight_decay, ..AdamConfig::new(lr, s.beta1.unwrap_or(adam.beta1), s.beta2.unwrap_or(adam.beta2)) },
            lr_schedule: s.lr_schedule.unwrap_or(defaults.lr_schedule),
            seed: s.seed.unwrap_or(defaults.seed),
            data: s.data.clone(),
            images: ImageOptions { size: s.size, channels: s.channels, background: s.background.unwrap_or_default() },
            limit: s.limit,
            out,
            checkpoint_every: s.checkpoint_every.unwrap_or(defaults.checkpoint_every),
            eval_every: s.eval_every.or(defaults.eval_every),
            eval_samples: s.eval_samples.unwrap_or(defaults.eval_samples),
            classifier_path: s.classifier.clone(),
            keep_best: s.keep_best,
            steps_per_submit: s.steps_per_submit.unwrap_or(defaults.steps_per_submit),
            stream: s.stream.unwrap_or(defaults.stream),
            conditional,
            vae: defaults.vae.map(|v| VaeConfig {
                latent: s.z_dim.unwrap_or(v.latent),
                init,
                class_prior: s.class_prior.unwrap_or(v.class_prior),
                ..v
            }),
            gan: defaults.gan.map(|g| GanConfig {
                latent: s.z_dim.unwrap_or(g.latent),
                g_activation: s.g_activation.unwrap_or(g.g_activation),
                d_activation: s.d_activation.unwrap_or(g.d_activation),
                g_batchnorm: s.g_batchnorm.unwrap_or(g.g_batchnorm),
                output: s.output.unwrap_or(g.output),
                label_smoothing: s.label_smoothing.unwrap_or(g.label_smoothing),
                init,
                update_order: s.update_order.unwrap_or(g.update_order),
                d_lr: s.d_lr.or(g.d_lr),
                // 0 keeps no average.
                g_ema: s.g_ema.map_or(g.g_ema, |d| (d > 0.0).then_some(d)),
                d_batchnorm: s.d_batchnorm.unwrap_or(g.d_batchnorm),
                projection: s.projection.unwrap_or(g.projection),
                loss: s.loss.unwrap_or(g.loss),
                augment: s.augment.unwrap_or(g.augment),
                spectral_norm: s.spectral_norm.unwrap_or(g.spectral_norm),
                ..g
            }),
            classifier: defaults.classifier.map(|c| ClassifierConfig { init, ..c }),
            given: Given { lr: s.lr.is_some(), d_lr: s.d_lr.is_some(), batch: s.batch.is_some() },
        })
    }
}
