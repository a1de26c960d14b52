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
//! G to keep every class (README, "Class-conditional models").

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::mlp::{padded_width, Backward, BatchnormMode, BatchnormSpec, Forward, InputGrad, LayerSpec, Mlp};
use super::params::{initial_values, Init, ParamLayout, Parameters};
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, GpuError, Program, Tensor, View};
use crate::nn::{self, Activation, AdamConfig, ConvShape, GanLossParts, LabelVectors, Step, StepBuffer};

pub const IMAGE: usize = 784;

/// Metric slots, accumulated over an epoch: d_loss, g_loss, mean D(x), mean D(G(z)).
pub const D_LOSS: usize = 0;
pub const G_LOSS: usize = 1;
pub const D_REAL: usize = 2;
pub const D_FAKE: usize = 3;
pub const METRIC_SLOTS: usize = 4;

/// Which network a training step updates first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
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

pub const G_EMBEDDING: &str = "generator.label_emb.weight";
pub const D_EMBEDDING: &str = "discriminator.label_emb.weight";

/// The generator's output activation, and so the range the data is scaled to for D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
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
    /// BatchNorm2d → LeakyReLU 0.2 → flatten → Linear(128·7·7 → 1).
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
}

fn with_batchnorm() -> bool {
    true
}

impl GanConfig {
    /// The Adam settings of each network: D's learning rate may differ.
    pub fn adam(&self, adam: &AdamConfig) -> (AdamConfig, AdamConfig) {
        (*adam, AdamConfig { lr: self.d_lr.unwrap_or(adam.lr), ..*adam })
    }

    /// The width of the label vector in each network's input (0 unconditioned).
    pub fn label_width(&self) -> usize {
        self.classes.unwrap_or(0)
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
            d_lr: None,
            d_batchnorm: true,
            projection: false,
            g_ema: None,
        }
    }
}

impl GanConfig {
    /// The MLP GAN as `wgen train gan` trains it: G averaged at 0.999. Scored by the CNN judge
    /// over seeds 0–2 at 50 epochs (README, "GAN sample quality"), G's last weights leave 7 / 7
    /// / 8 classes at ≥ 5% with 27–32% read as 8s (speckled strokes), their average 10 / 8 / 8
    /// with the better FD, IS and effective number of classes on every seed.
    pub fn mlp() -> GanConfig {
        GanConfig { g_ema: Some(0.999), ..GanConfig::default() }
    }

    /// The DCGAN (`wgen train dcgan`): PyTorch's BatchNorm defaults, ReLU in G, D at 2e-5 (G
    /// at 4e-4: `TrainConfig::defaults`) and G averaged at 0.999. At the 2e-4 for both,
    /// D overpowers G on 9,000 images (D(G(z)) ≈ 0.1) and 1s and 4s are rare; the recipe study
    /// (README, "The DCGAN") found that slowing D (2e-5) and speeding G (4e-4) covers all 10
    /// classes at ≥ 5% on seeds 0–2 at epoch 30, and that the average of G holds FD at 26.5–30
    /// from epoch 20 on where G's own weights swing between 25 and 48.
    pub fn dcgan() -> GanConfig {
        GanConfig { arch: GanArch::Conv, g_activation: Activation::Relu, bn_eps: 1e-5, d_lr: Some(2e-5), g_ema: Some(0.999), ..GanConfig::default() }
    }
}

pub fn layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    if cfg.arch == GanArch::Conv {
        return conv_layers(cfg);
    }
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
    generator.push(LayerSpec::new(&format!("generator.fc{}", cfg.g_hidden.len() + 1), width, IMAGE, cfg.output.activation()));
    let mut discriminator = Vec::new();
    let mut width = IMAGE + cfg.label_width();
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

/// The DCGAN's layers (`GanArch::Conv`), named as its PyTorch module's.
fn conv_layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    assert!(cfg.classes.is_none(), "the DCGAN is not conditioned");
    let bn = |name: &str, groups| Some(BatchnormSpec { groups, ..BatchnormSpec::new(name, cfg.bn_eps, cfg.bn_momentum) });
    let deconv1 = ConvShape::transposed(128, 64, 7, 7, 4, 2, 1);
    let deconv2 = ConvShape::transposed(64, 1, 14, 14, 4, 2, 1);
    let generator = vec![
        LayerSpec { batchnorm: bn("generator.bn0", 1), ..LayerSpec::new("generator.fc", cfg.latent, deconv1.out_len(), cfg.g_activation) },
        LayerSpec { batchnorm: bn("generator.bn1", 1), ..LayerSpec::conv_transpose2d("generator.deconv1", deconv1, cfg.g_activation) },
        LayerSpec::conv_transpose2d("generator.deconv2", deconv2, cfg.output.activation()),
    ];
    let conv1 = ConvShape::conv2d(1, 64, 28, 28, 4, 2, 1);
    let conv2 = ConvShape::conv2d(64, 128, 14, 14, 4, 2, 1);
    let discriminator = vec![
        LayerSpec::conv2d("discriminator.conv1", conv1, cfg.d_activation),
        // Real and fake batches: two groups.
        LayerSpec { batchnorm: bn("discriminator.bn2", 2).filter(|_| cfg.d_batchnorm), ..LayerSpec::conv2d("discriminator.conv2", conv2, cfg.d_activation) },
        LayerSpec::new("discriminator.fc", conv2.out_len(), 1, Activation::Identity),
    ];
    (generator, discriminator)
}

/// The widths of G's and D's inputs as stored: real columns, then zero padding.
pub fn input_widths(cfg: &GanConfig) -> (usize, usize) {
    let (g, d) = layers(cfg);
    (g[0].inp, d[0].inp)
}

pub struct Gan {
    pub config: GanConfig,
    pub generator: Mlp,
    pub discriminator: Mlp,
    pub params: Parameters,
}

/// G's embedding and layers, then D's, each network's tensors in one range of the layout.
fn allocate(cfg: &GanConfig) -> (Mlp, Mlp, ParamLayout, ParamLayout) {
    let (g, d) = layers(cfg);
    let (mut params, mut state) = (ParamLayout::default(), ParamLayout::default());
    let k = cfg.label_width();
    if k > 0 {
        params.push_block(&[(G_EMBEDDING.to_string(), vec![k, k])]);
    }
    let generator = Mlp::allocate(g, &mut params, &mut state);
    if k > 0 {
        params.push_block(&[(D_EMBEDDING.to_string(), vec![k, k])]);
    }
    let discriminator = Mlp::allocate(d, &mut params, &mut state);
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

/// The extra buffers of a conditional GAN's step (k classes).
pub struct Conditioning {
    /// [2B] class indices as f32: the real rows' labels, then the labels G is asked to draw
    pub labels: Tensor,
    /// [B, k + latent + pad]: G's input, [embedding(label) | z | zeros]
    pub g_in: Tensor,
    /// [B, 784]: the real images before they join D's input
    pub real: Tensor,
    /// [B, 784]: G's output before it joins D's input
    pub fake: Tensor,
    /// [2B, k rounded up to 4]: the gradient at D's label columns (and the pad after them), from
    /// D's loss; a whole-vec4 width lets the subgroup matmul compute it (10 columns took the
    /// tiled kernel, 5% of the step)
    pub d_label: Tensor,
    /// [B, k rounded up to 4]: the gradient at G's label columns (and the first z columns)
    pub g_label: Tensor,
    pub projection: Option<Projection>,
}

/// The logits a projection discriminator's heads give, and their gradients.
pub struct Projection {
    /// [2B, 1]: one logit per row of D's main pass (the first B rows reused for its fake-only
    /// pass)
    pub logits: Tensor,
    /// [2B, 1]: d D's loss / d logit
    pub d_logits: Tensor,
    /// [B, 1]: d G's loss / d logit of the fake rows
    pub g_logits: Tensor,
}

/// The buffers of one GAN training step over a batch of B real images.
pub struct GanGraph {
    pub batch: usize,
    /// [B, latent]
    pub z: Tensor,
    /// [2B, 784 (+ k + pad)]: real images, then G(z), each row followed by its label's vector
    /// (and zero padding) when conditioned; unconditioned, the generator writes its half in place
    pub d_in: Tensor,
    pub conditioning: Option<Conditioning>,
    pub generator: Forward,
    pub discriminator: Forward,
    /// D-first order only: the updated D's pass over the B fake rows, which G learns from
    pub discriminator_fake: Option<Forward>,
    /// D's gradients from its own loss, over all 2B rows
    pub d_disc: Backward,
    /// D's input gradients from G's loss, over the B fake rows only
    pub d_disc_for_g: Backward,
    pub d_generator: Backward,
}

impl GanGraph {
    pub fn new(gpu: &Gpu, gan: &Gan, batch: usize) -> Result<GanGraph, GpuError> {
        let cfg = &gan.config;
        let k = cfg.label_width();
        let (g_width, d_width) = input_widths(cfg);
        let z = Tensor::zeros(gpu, "gan.z", &[batch, cfg.latent])?;
        // Pad columns are zero from creation and never written.
        let d_in = Tensor::zeros(gpu, "discriminator.input", &[2 * batch, d_width])?;
        let conditioning = match cfg.classes {
            None => None,
            Some(_) => Some(Conditioning {
                labels: Tensor::zeros(gpu, "gan.labels", &[2 * batch])?,
                g_in: Tensor::zeros(gpu, "generator.input", &[batch, g_width])?,
                real: Tensor::zeros(gpu, "gan.real", &[batch, IMAGE])?,
                fake: Tensor::zeros(gpu, "gan.fake", &[batch, IMAGE])?,
                d_label: Tensor::zeros(gpu, "discriminator.label_emb.d_out", &[2 * batch, padded_width(k)])?,
                g_label: Tensor::zeros(gpu, "generator.label_emb.d_out", &[batch, padded_width(k)])?,
                projection: match cfg.projection {
                    true => Some(Projection {
                        logits: Tensor::zeros(gpu, "discriminator.logits", &[2 * batch, 1])?,
                        d_logits: Tensor::zeros(gpu, "discriminator.logits.d_disc", &[2 * batch, 1])?,
                        g_logits: Tensor::zeros(gpu, "discriminator.logits.d_gen", &[batch, 1])?,
                    }),
                    false => None,
                },
            }),
        };
        let generator = match &conditioning {
            None => gan.generator.forward_buffers(gpu, z.region(), Some(d_in.region().rows(batch, batch)))?,
            Some(c) => gan.generator.forward_buffers(gpu, c.g_in.region(), Some(c.fake.region()))?,
        };
        let mut discriminator = gan.discriminator.forward_buffers(gpu, d_in.region(), None)?;
        discriminator.groups = 2;
        let discriminator_fake = match cfg.update_order {
            UpdateOrder::DFirst => Some(gan.discriminator.forward_buffers(gpu, d_in.region().rows(batch, batch), None)?),
            UpdateOrder::GFirst => None,
        };
        Ok(GanGraph {
            batch,
            d_disc: gan.discriminator.backward_buffers(gpu, 2 * batch)?,
            d_disc_for_g: gan.discriminator.backward_buffers(gpu, batch)?,
            d_generator: gan.generator.backward_buffers(gpu, batch)?,
            z,
            d_in,
            conditioning,
            generator,
            discriminator,
            discriminator_fake,
        })
    }

    /// G(z) as [B, 784], wherever the generator wrote it.
    fn fake(&self) -> View<'_> {
        match &self.conditioning {
            None => self.d_in.view().rows(self.batch, self.batch),
            Some(c) => c.fake.view(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn train_program(&self, gpu: &Gpu, gan: &Gan, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, metrics: &Tensor, adam: &AdamConfig) -> Program {
        let cfg = &gan.config;
        let b = self.batch;
        let params = &gan.params;
        let (scale, shift) = cfg.output.data_scale();
        let mut program = Program::default();
        let g_table = gan.embedding(G_EMBEDDING);
        let d_table = gan.embedding(D_EMBEDDING);
        match (&self.conditioning, cfg.classes, g_table, d_table) {
            (Some(c), Some(k), Some((g_table, _)), Some((d_table, _))) => {
                let labels = c.labels.view();
                let d_in = self.d_in.view();
                program.phase(
                    "data",
                    vec![
                        nn::gather_rows(gpu, "real", step, &split.pixels.buffer, &split.order.buffer, c.real.view(), scale, shift),
                        nn::gather_labels(gpu, "real", step, &split.labels.buffer, &split.order.buffer, labels.rows(0, b)),
                        nn::fill_labels(gpu, "fake", step, labels.rows(b, b), k, STREAM_LABELS, seed),
                        nn::fill_normal(gpu, "z", step, self.z.view(), STREAM_Z, seed),
                    ],
                );
                program.phase(
                    "condition",
                    vec![
                        nn::embedding_forward(gpu, "generator.label_emb", labels.rows(b, b), LabelVectors::Table(g_table), c.g_in.view().columns(0, k)),
                        nn::copy_columns(gpu, "generator.input", self.z.view(), c.g_in.view().columns(k, cfg.latent)),
                        nn::copy_columns(gpu, "discriminator.input", c.real.view(), d_in.rows(0, b).columns(0, IMAGE)),
                        nn::embedding_forward(gpu, "discriminator.label_emb", labels, LabelVectors::Table(d_table), d_in.columns(IMAGE, k)),
                    ],
                );
            }
            _ => program.phase(
                "data",
                vec![
                    nn::gather_rows(gpu, "real", step, &split.pixels.buffer, &split.order.buffer, self.d_in.view().rows(0, b), scale, shift),
                    nn::fill_normal(gpu, "z", step, self.z.view(), STREAM_Z, seed),
                ],
            ),
        }
        program.phase("generator.forward", gan.generator.forward_launches(gpu, params, &self.generator, BatchnormMode::Train));
        if self.conditioning.is_some() {
            program.phase("condition.fake", vec![nn::copy_columns(gpu, "discriminator.input", self.fake(), self.d_in.view().rows(b, b).columns(0, IMAGE))]);
        }
        program.phase("discriminator.forward", gan.discriminator.forward_launches(gpu, params, &self.discriminator, BatchnormMode::Train));
        let real_label = 1.0 - cfg.label_smoothing;
        // `heads` is D's output over rows from `first` of [real; fake].
        let loss = |parts, heads: &Forward, first: usize| {
            let (d_heads, g_heads) = (self.d_disc.d_output().view(), self.d_disc_for_g.d_output().view());
            match self.conditioning.as_ref().and_then(|c| c.projection.as_ref().map(|p| (c, p))) {
                None => vec![nn::gan_loss(gpu, "gan", parts, heads.output().view(), real_label, 0.0, d_heads, g_heads, &metrics.buffer, D_LOSS)],
                Some((c, p)) => {
                    let rows = heads.output().rows;
                    let logits = p.logits.view().rows(0, rows);
                    let labels = c.labels.view();
                    let mut launches = vec![
                        nn::class_logit_forward(gpu, "discriminator.projection", labels.rows(first, rows), heads.output().view(), logits),
                        nn::gan_loss(gpu, "gan", parts, logits, real_label, 0.0, p.d_logits.view(), p.g_logits.view(), &metrics.buffer, D_LOSS),
                    ];
                    if parts != GanLossParts::Generator {
                        launches.push(nn::class_logit_backward(gpu, "discriminator.projection", labels, p.d_logits.view(), d_heads));
                    }
                    if parts != GanLossParts::Discriminator {
                        launches.push(nn::class_logit_backward(gpu, "discriminator.projection", labels.rows(b, b), p.g_logits.view(), g_heads));
                    }
                    launches
                }
            }
        };
        let adam_over = |label, range, adam: &AdamConfig| {
            vec![nn::adam(gpu, label, adam, step, range, &params.values.buffer, &params.grads.buffer, &params.adam_m.buffer, &params.adam_v.buffer)]
        };
        let (g_range, d_range) = gan.ranges();
        let (g_adam, d_adam) = cfg.adam(adam);
        // G's gradient reaches G(z) through D's input gradient on the fake rows' image columns,
        // times tanh′.
        let into_generator = [InputGrad { from: 0, dx: self.d_generator.d_output().view(), prev: Some((self.fake(), cfg.output.activation())) }];
        // D's own backward also takes the gradient at its label columns, into its embedding;
        // G's backward at its label columns, into G's.
        let (d_label_grad, g_label_grad) = match &self.conditioning {
            Some(c) => (vec![InputGrad::all(c.d_label.view()).from_column(IMAGE)], vec![InputGrad::all(c.g_label.view())]),
            None => (Vec::new(), Vec::new()),
        };
        let d_embedding_backward = |launches: &mut Vec<_>| {
            if let (Some(c), Some((_, d_grad))) = (&self.conditioning, d_table) {
                launches.push(nn::embedding_backward(gpu, "discriminator.label_emb", c.labels.view(), c.d_label.view().columns(0, d_grad.cols), d_grad));
            }
        };
        let generator_backward = || {
            let mut launches = gan.generator.backward_launches(gpu, params, &self.generator, 0, &self.d_generator, true, &g_label_grad);
            if let (Some(c), Some((_, g_grad))) = (&self.conditioning, g_table) {
                launches.push(nn::embedding_backward(gpu, "generator.label_emb", c.labels.view().rows(b, b), c.g_label.view().columns(0, g_grad.cols), g_grad));
            }
            launches
        };
        let mut d_backward = gan.discriminator.backward_launches(gpu, params, &self.discriminator, 0, &self.d_disc, true, &d_label_grad);
        d_embedding_backward(&mut d_backward);
        match &self.discriminator_fake {
            None => {
                program.phase("loss", loss(GanLossParts::Both, &self.discriminator, 0));
                program.phase("discriminator.backward", d_backward);
                let to_g = gan.discriminator.backward_launches(gpu, params, &self.discriminator, b, &self.d_disc_for_g, false, &into_generator);
                program.phase("generator.loss.backward", to_g);
                program.phase("generator.backward", generator_backward());
                if g_adam == d_adam {
                    program.phase("adam", adam_over("gan", 0..params.layout.len, &g_adam));
                } else {
                    let mut both = adam_over("gan.generator", g_range, &g_adam);
                    both.extend(adam_over("gan.discriminator", d_range, &d_adam));
                    program.phase("adam", both);
                }
            }
            Some(judged) => {
                program.phase("discriminator.loss", loss(GanLossParts::Discriminator, &self.discriminator, 0));
                program.phase("discriminator.backward", d_backward);
                program.phase("discriminator.adam", adam_over("gan.discriminator", d_range, &d_adam));
                let mut judge = Vec::new();
                if let (Some(c), Some(k), Some((d_table, _))) = (&self.conditioning, cfg.classes, d_table) {
                    // The updated D embeds the fake rows' labels afresh, as D(G(z), labels) would.
                    let fake_rows = self.d_in.view().rows(b, b).columns(IMAGE, k);
                    judge.push(nn::embedding_forward(gpu, "discriminator.label_emb", c.labels.view().rows(b, b), LabelVectors::Table(d_table), fake_rows));
                }
                judge.extend(gan.discriminator.forward_launches(gpu, params, judged, BatchnormMode::Train));
                program.phase("discriminator.forward.fake", judge);
                program.phase("generator.loss", loss(GanLossParts::Generator, judged, b));
                let to_g = gan.discriminator.backward_launches(gpu, params, judged, 0, &self.d_disc_for_g, false, &into_generator);
                program.phase("generator.loss.backward", to_g);
                program.phase("generator.backward", generator_backward());
                program.phase("generator.adam", adam_over("gan.generator", g_range, &g_adam));
            }
        }
        if let Some(avg) = &params.average {
            // After G's update and its forward pass's running statistics, as the PyTorch loop's
            // update of its averaged copy.
            let mut launches = vec![nn::ema(gpu, "generator.average", avg.decay, step, avg.range.clone(), &avg.values.buffer, &params.values.buffer)];
            if !avg.state_range.is_empty() {
                launches.push(nn::ema(gpu, "generator.average.state", avg.decay, step, avg.state_range.clone(), &avg.state.buffer, &params.state.buffer));
            }
            program.phase("generator.average", launches);
        }
        program
    }
}

/// `n` samples [n, 784] in [0, 1], generated `max_rows` at a time (chunks whose row count is a
/// multiple of the class count, so the asked-for classes cycle as in one sampler): chunk c
/// draws its z at rng_step c, so a single chunk (any MLP GAN at 5,000) is exactly one
/// sampler's draw. Leaves `step` at the default Step.
pub fn sample_images(gpu: &Gpu, gan: &Gan, n: usize, step: &StepBuffer, seed: u64) -> Result<Vec<f32>, GpuError> {
    let k = gan.config.label_width().max(1);
    let rows = n.min((gan.max_rows(gpu) / k * k).max(k));
    let sampler = GanSampler::new(gpu, gan, rows, &step.uniform, seed)?;
    let output = gan.config.output;
    let mut images = Vec::with_capacity(n * IMAGE);
    for c in 0..n.div_ceil(rows) {
        step.set(gpu, &Step { rng_step: c as u32, ..Step::default() });
        sampler.program.run(gpu, "gan.samples");
        let take = rows.min(n - c * rows);
        images.extend(sampler.generator.output().read_rows(gpu, take, |v| output.to_unit(v))?);
    }
    step.set(gpu, &Step::default());
    Ok(images)
}

/// Generates `rows` images, batch norm on running statistics: `program` from noise drawn with
/// a fixed key (and, conditioned, the classes in `labels`, which the host writes: row i asks
/// for class i mod k until then); `decode` from an `input` the host wrote whole (z, or
/// [label vector | z] conditioned, so a row can blend two classes' vectors).
pub struct GanSampler {
    pub z: Tensor,
    /// [rows] class indices as f32, conditioned only
    pub labels: Option<Tensor>,
    /// [rows, latent (+ k + pad)]: what G reads (z itself when unconditioned)
    pub input: Tensor,
    pub generator: Forward,
    pub program: Program,
    pub decode: Program,
}

impl GanSampler {
    pub fn new(gpu: &Gpu, gan: &Gan, rows: usize, step: &wgpu::Buffer, seed: u64) -> Result<GanSampler, GpuError> {
        let cfg = &gan.config;
        let z = Tensor::zeros(gpu, "sample.z", &[rows, cfg.latent])?;
        let mut program = Program::default();
        program.phase("noise", vec![nn::fill_normal(gpu, "sample.z", step, z.view(), STREAM_SAMPLE, seed)]);
        // G's average, when it keeps one: its label table too.
        let weights = gan.params.sampling_weights();
        let (labels, input) = match (cfg.classes, gan.params.layout.find(G_EMBEDDING)) {
            (Some(k), Some(e)) => {
                let table = View::new(weights.values, e.offset, k, k);
                let classes: Vec<f32> = super::cycling_classes(rows, k).iter().map(|&c| c as f32).collect();
                let labels = Tensor::from_slice(gpu, "sample.labels", &[rows], &classes)?;
                let input = Tensor::zeros(gpu, "sample.generator.input", &[rows, input_widths(cfg).0])?;
                program.phase(
                    "condition",
                    vec![
                        nn::embedding_forward(gpu, "generator.label_emb", labels.view(), LabelVectors::Table(table), input.view().columns(0, k)),
                        nn::copy_columns(gpu, "generator.input", z.view(), input.view().columns(k, cfg.latent)),
                    ],
                );
                (Some(labels), input)
            }
            _ => (None, z.clone()),
        };
        let generator = gan.generator.forward_buffers(gpu, input.region(), None)?;
        program.phase("generator.forward", gan.generator.forward_launches(gpu, weights, &generator, BatchnormMode::Eval));
        let mut decode = Program::default();
        decode.phase("generator.forward", gan.generator.forward_launches(gpu, weights, &generator, BatchnormMode::Eval));
        Ok(GanSampler { z, labels, input, generator, program, decode })
    }
}
