//! The GAN: generator z[100] → 256 → 512 → 1024 → 784, discriminator 784 → 512 → 256 → 1
//! logit (or the DCGAN's conv layers, `GanArch::Conv`), trained with the non-saturating BCE
//! loss.
//!
//! A step updates the two networks in one of two orders (`UpdateOrder`). D first (the default,
//! as pytorch/examples' DCGAN): D learns from [real; G(z).detach()], then G from the updated D's
//! verdict on the same G(z), which takes a second, fake-only discriminator pass. G first (as
//! PyTorch-GAN's recipe): G's loss is D(G(z)) judged by the not-yet-updated D and D's loss sees
//! the same G(z) detached, so one discriminator pass over [real; fake] serves both losses. In
//! both, D's gradient from G's loss is discarded as `optimizer_D.zero_grad()` discards it.
//! D's batch norm (the DCGAN's) normalises the real and the fake rows of its pass as two
//! batches, as PyTorch's separate `netD(real)` and `netD(fake)` calls do.
//!
//! Conditioned on k classes (PyTorch-GAN's cgan), each network learns a k×k label embedding
//! (`nn.Embedding(k, k)`): G sees [embedding(label) | z] and D sees [image | embedding(label)].
//! A learned vector rather than a one-hot lets the two networks place classes where their
//! first layers find them useful, at 2·k² parameters. Real rows carry their true labels, fake
//! rows labels drawn uniformly on the GPU.
//! With `projection` (the CLI's default for `--conditional`) D's last layer has a shared head
//! and one per class, and a row's logit is the shared head's plus its class head's: the label
//! then also meets D's last features, where the input columns alone checked it too weakly for
//! G to keep every class (docs/studies/conditional.md).

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::layers::{initial_values, BatchnormSpec, Init, LayerSpec};
use super::network::Network;
use super::params::{ParamLayout, Parameters};
use crate::data::ImageShape;
use crate::gpu::{Gpu, GpuError, View};
use crate::nn::{Activation, AdamConfig, AugmentPolicy, GanLoss};

mod conv;
mod program;
mod sample;
mod step;

pub use conv::EXAMPLES_LR;
pub use sample::{sample_images, GanSampler};
pub use step::{Augmented, Conditioning, GanGraph, Projection};

/// Metric slots, accumulated over an epoch: d_loss, g_loss, mean D(x), mean D(G(z)).
pub const D_LOSS: usize = 0;
pub const G_LOSS: usize = 1;
pub const D_REAL: usize = 2;
pub const D_FAKE: usize = 3;
pub const METRIC_SLOTS: usize = 4;

/// Which network a training step updates first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// D on [real; G(z)], then G against the updated D: every digit class is drawn.
    DFirst,
    /// G against the old D, then D: PyTorch-GAN's loop; under-covers some digits.
    GFirst,
}

impl UpdateOrder {
    /// Runs written before the option existed were trained G first.
    fn before_the_option() -> UpdateOrder {
        UpdateOrder::GFirst
    }
}

pub const STREAM_Z: u32 = 2;
pub const STREAM_SAMPLE: u32 = 4;
pub const STREAM_LABELS: u32 = 6;
/// The augmentation's draws (the classifier's shifts are stream 7).
pub const STREAM_AUGMENT: u32 = 8;

pub const G_EMBEDDING: &str = "generator.label_emb.weight";
pub const D_EMBEDDING: &str = "discriminator.label_emb.weight";

/// The generator's output activation, and so the range the data is scaled to for D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Images in [-1, 1].
    Tanh,
    /// Images in [0, 1].
    Sigmoid,
}

impl Output {
    pub fn activation(self) -> Activation {
        match self {
            Output::Tanh => Activation::Tanh,
            Output::Sigmoid => Activation::Sigmoid,
        }
    }

    /// (scale, shift) taking a byte to the output's range.
    pub fn data_scale(self) -> (f32, f32) {
        match self {
            Output::Tanh => (2.0 / 255.0, -1.0),
            Output::Sigmoid => (1.0 / 255.0, 0.0),
        }
    }

    /// Maps an output value to [0, 1] for images.
    pub fn to_unit(self, v: f32) -> f32 {
        match self {
            Output::Tanh => (v + 1.0) / 2.0,
            Output::Sigmoid => v,
        }
    }
}

/// The two networks' layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanArch {
    /// Linear layers of `g_hidden` and `d_hidden` widths.
    #[default]
    Mlp,
    /// `wgen train dcgan`: G z → Linear 128·7·7 → BatchNorm1d → ReLU → [128, 7, 7] →
    /// ConvTranspose2d(128→64, k4 s2 p1) → BatchNorm2d → ReLU → ConvTranspose2d(64→1, k4 s2 p1)
    /// → tanh; D Conv2d(1→64, k4 s2 p1) → LeakyReLU 0.2 → Conv2d(64→128, k4 s2 p1) →
    /// BatchNorm2d → LeakyReLU 0.2 → flatten → Linear(128·7·7 → 1); on S × S images of C
    /// channels the same with 7 = S/4 and C in and out. At 32 × 32 and 64 × 64, pytorch/examples'
    /// DCGAN instead (`examples_layers`).
    Conv,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GanConfig {
    #[serde(default)]
    pub arch: GanArch,
    pub latent: usize,
    pub g_hidden: Vec<usize>,
    pub d_hidden: Vec<usize>,
    pub g_activation: Activation,
    pub d_activation: Activation,
    /// Batch norm after every generator hidden layer but the first.
    pub g_batchnorm: bool,
    pub bn_eps: f32,
    pub bn_momentum: f32,
    pub output: Output,
    /// D's target for real images is 1 - label_smoothing.
    pub label_smoothing: f32,
    pub init: Init,
    #[serde(default = "UpdateOrder::before_the_option")]
    pub update_order: UpdateOrder,
    /// Conditioned on this many classes (`--conditional`); absent for the unconditional GAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Conditioned on a folder's classes: their names (its subfolders, in label order), so a
    /// class can be asked for by name; absent for numbered classes and files from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// D's Adam learning rate when it is not G's (`--d-lr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_lr: Option<f32>,
    /// The DCGAN's batch norm in D (`--d-batchnorm`); the MLP GAN's D has none.
    #[serde(default = "with_batchnorm")]
    pub d_batchnorm: bool,
    /// Conditioned: D's last layer has a shared head and one head per class, and its logit is
    /// the shared head's plus the row's class head's (`--projection`; Miyato & Koyama's
    /// projection discriminator, the class vectors being the class heads' weights).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub projection: bool,
    /// Keep an exponential moving average of G with this decay (`--g-ema`), warmed up as
    /// min(decay, t / (9 + t)); sampling and `model.safetensors` use it instead of G's last
    /// weights, which go on training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g_ema: Option<f32>,
    /// The images G draws and D judges, set from the data (files from before: MNIST's).
    #[serde(default)]
    pub image: ImageShape,
    /// The objective (`--loss`; files from before: BCE).
    #[serde(default)]
    pub loss: GanLoss,
    /// DiffAugment's transforms, drawn afresh for every image D sees in training, real or
    /// generated, with G's gradient passed back through them (`--augment`; none by default).
    #[serde(default, skip_serializing_if = "AugmentPolicy::is_none")]
    pub augment: AugmentPolicy,
    /// Spectral norm on every weight of D, Linear and conv (`--spectral-norm`; Miyato et al.
    /// 2018): D's passes read W / σ(W), σ estimated by one power iteration per training pass.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spectral_norm: bool,
}

fn with_batchnorm() -> bool {
    true
}

impl GanConfig {
    /// The Adam settings of each network: D's learning rate may differ.
    pub fn adam(&self, adam: &AdamConfig) -> (AdamConfig, AdamConfig) {
        (*adam, AdamConfig { lr: self.d_lr.unwrap_or(adam.lr), ..*adam })
    }

    /// The width of the label vector in G's input (0 unconditioned).
    pub fn label_width(&self) -> usize {
        self.classes.unwrap_or(0)
    }

    /// The width of the label vector in D's input: the MLP D's, as G's; none in the DCGAN's,
    /// whose convolutions read the image alone (its D meets the label through its projection).
    pub fn d_label_width(&self) -> usize {
        if self.arch == GanArch::Conv {
            0
        } else {
            self.label_width()
        }
    }

    /// The width of D's last layer: one logit, or with the projection a shared head and a head
    /// per class.
    pub fn d_heads(&self) -> usize {
        match self.classes {
            Some(k) if self.projection => 1 + k,
            _ => 1,
        }
    }
}

impl Default for GanConfig {
    fn default() -> Self {
        GanConfig {
            arch: GanArch::Mlp,
            latent: 100,
            g_hidden: vec![256, 512, 1024],
            d_hidden: vec![512, 256],
            g_activation: Activation::LeakyRelu(0.2),
            d_activation: Activation::LeakyRelu(0.2),
            g_batchnorm: true,
            bn_eps: 0.8,
            bn_momentum: 0.1,
            output: Output::Tanh,
            label_smoothing: 0.0,
            init: Init::Torch,
            update_order: UpdateOrder::DFirst,
            classes: None,
            class_names: None,
            d_lr: None,
            d_batchnorm: true,
            projection: false,
            g_ema: None,
            image: ImageShape::MNIST,
            loss: GanLoss::Bce,
            augment: AugmentPolicy::default(),
            spectral_norm: false,
        }
    }
}

impl GanConfig {
    /// The MLP GAN as `wgen train gan` trains it: G averaged at 0.999 (its rate, 6e-4 for both
    /// networks, is `MLP_GAN_LR`). In the study (docs/studies/gan.md) the average scored the
    /// better FD, IS and effective number of classes than G's last weights on every seed, at
    /// 2e-4 and at 6e-4.
    pub fn mlp() -> GanConfig {
        GanConfig { g_ema: Some(0.999), ..GanConfig::default() }
    }

    /// The DCGAN (`wgen train dcgan`): PyTorch's BatchNorm defaults, ReLU in G, D at 2e-5 (G
    /// at 4e-4: `TrainConfig::defaults`) and G averaged at 0.999. At pytorch/examples' 2e-4 for both,
    /// D overpowers G on 9,000 images (D(G(z)) ≈ 0.1) and 1s and 4s are rare; the recipe study
    /// (docs/studies/dcgan.md) found that slowing D (2e-5) and speeding G (4e-4) covers all 10
    /// classes at ≥ 5% on seeds 0–2 at epoch 30, and that the average of G holds FD at 26.5–30
    /// from epoch 20 on where G's own weights swing between 25 and 48. That study was on the
    /// 28 × 28 digits; pytorch/examples' DCGAN (32 and 64) trains at its own rates
    /// (`is_examples`).
    pub fn dcgan() -> GanConfig {
        GanConfig { arch: GanArch::Conv, g_activation: Activation::Relu, bn_eps: 1e-5, d_lr: Some(2e-5), g_ema: Some(0.999), ..GanConfig::default() }
    }

    /// Whether this DCGAN is pytorch/examples' (32 × 32 and 64 × 64 images), which trains at
    /// pytorch/examples' rates, `EXAMPLES_LR` for G and D, unless they are given.
    pub fn is_examples(&self) -> bool {
        self.arch == GanArch::Conv && matches!(self.image.side, 32 | 64)
    }
}

pub fn layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    let (generator, discriminator) = if cfg.arch == GanArch::Conv { conv::conv_layers(cfg) } else { mlp_layers(cfg) };
    let discriminator = discriminator.into_iter().map(|l| LayerSpec { spectral: cfg.spectral_norm, ..l }).collect();
    (generator, discriminator)
}

fn mlp_layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    let mut generator = Vec::new();
    let mut width = cfg.latent + cfg.label_width();
    for (i, &h) in cfg.g_hidden.iter().enumerate() {
        let n = i + 1;
        let mut layer = LayerSpec::new(&format!("generator.fc{n}"), width, h, cfg.g_activation);
        if cfg.g_batchnorm && i > 0 {
            layer.batchnorm = Some(BatchnormSpec::new(&format!("generator.bn{n}"), cfg.bn_eps, cfg.bn_momentum));
        }
        generator.push(layer);
        width = h;
    }
    generator.push(LayerSpec::new(&format!("generator.fc{}", cfg.g_hidden.len() + 1), width, cfg.image.values(), cfg.output.activation()));
    let mut discriminator = Vec::new();
    let mut width = cfg.image.values() + cfg.d_label_width();
    for (i, &h) in cfg.d_hidden.iter().enumerate() {
        discriminator.push(LayerSpec::new(&format!("discriminator.fc{}", i + 1), width, h, cfg.d_activation));
        width = h;
    }
    discriminator.push(LayerSpec::new(&format!("discriminator.fc{}", cfg.d_hidden.len() + 1), width, cfg.d_heads(), Activation::Identity));
    if cfg.classes.is_some() {
        generator[0] = generator[0].clone().padded();
        discriminator[0] = discriminator[0].clone().padded();
    }
    (generator, discriminator)
}

/// The widths of G's and D's inputs as stored: real columns, then zero padding.
pub fn input_widths(cfg: &GanConfig) -> (usize, usize) {
    let (g, d) = layers(cfg);
    (g[0].inp, d[0].inp)
}

pub struct Gan {
    pub config: GanConfig,
    pub generator: Network,
    pub discriminator: Network,
    pub params: Parameters,
}

/// G's embedding and layers, then D's, each network's tensors in one range of the layout.
fn allocate(cfg: &GanConfig) -> (Network, Network, ParamLayout, ParamLayout) {
    let (g, d) = layers(cfg);
    let (mut params, mut state) = (ParamLayout::default(), ParamLayout::default());
    let k = cfg.label_width();
    if k > 0 {
        params.push_block(&[(G_EMBEDDING.to_string(), vec![k, k])]);
    }
    let generator = Network::allocate(g, &mut params, &mut state);
    if cfg.d_label_width() > 0 {
        params.push_block(&[(D_EMBEDDING.to_string(), vec![k, k])]);
    }
    let discriminator = Network::allocate(d, &mut params, &mut state);
    (generator, discriminator, params, state)
}

/// The seed's embedding tables are drawn from their own stream so a conditional run's layers
/// start as the unconditional run's of the same seed would, but wider.
const EMBEDDING_SEED: u64 = 0x6c61_6265_6c73;

impl Gan {
    /// The layouts and initial values: Linear layers as torch.nn.Linear, embeddings N(0, 1) as
    /// torch.nn.Embedding.
    pub fn initial(cfg: &GanConfig, seed: u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>) {
        let (g, d) = layers(cfg);
        let (_, _, params, state) = allocate(cfg);
        let all: Vec<LayerSpec> = g.into_iter().chain(d).collect();
        let (mut values, state_values) = initial_values(&all, &params, &state, cfg.init, seed);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ EMBEDDING_SEED);
        for name in [G_EMBEDDING, D_EMBEDDING] {
            if let Some(e) = params.find(name) {
                for v in &mut values[e.range()] {
                    *v = StandardNormal.sample(&mut rng);
                }
            }
        }
        (params, state, values, state_values)
    }

    pub fn new(gpu: &Gpu, cfg: &GanConfig, values: &[f32], state: &[f32]) -> Result<Gan, GpuError> {
        let (generator, discriminator, p, s) = allocate(cfg);
        let ranges = (network_ranges(&p).0, generator_state_range(&s));
        let mut params = Parameters::new(gpu, "gan", p, s, values, state)?;
        if let Some(decay) = cfg.g_ema {
            params = params.averaging(gpu, "generator", decay, ranges, values, state)?;
        }
        Ok(Gan { config: cfg.clone(), generator, discriminator, params })
    }

    /// The most rows one generator graph may have: its widest per-row buffer (the DCGAN's
    /// deconv1 receptive fields: 50,176 values an image) must fit in one storage binding.
    pub fn max_rows(&self, gpu: &Gpu) -> usize {
        let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) as usize;
        (limit / (4 * self.generator.widest_row())).max(1)
    }

    /// A label table ([classes, classes]) and its gradient, when conditioned.
    fn embedding(&self, name: &str) -> Option<(View<'_>, View<'_>)> {
        self.params.matrix(name)
    }

    /// The parameter ranges of G and of D in the flat buffer: G's blocks come first.
    pub fn ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        network_ranges(&self.params.layout)
    }
}

/// G's and D's parameter ranges in a GAN's layout; D's starts at its first block (aligned).
pub fn network_ranges(layout: &ParamLayout) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let d = layout.entries.iter().find(|e| e.name.starts_with("discriminator.")).expect("a GAN has a discriminator").offset;
    (0..d, d..layout.len)
}

/// G's batch-norm statistics in a GAN's state layout: all before D's first (D may have none).
pub fn generator_state_range(state: &ParamLayout) -> std::ops::Range<usize> {
    0..state.entries.iter().find(|e| e.name.starts_with("discriminator.")).map_or(state.len, |e| e.offset)
}
