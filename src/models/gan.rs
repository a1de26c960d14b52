//! The GAN: generator z[100] → 256 → 512 → 1024 → 784, discriminator 784 → 512 → 256 → 1
//! logit, trained with the non-saturating BCE loss.
//!
//! A step updates the two networks in one of two orders (`UpdateOrder`). D first (the default,
//! as pytorch/examples' DCGAN): D learns from [real; G(z).detach()], then G from the updated D's
//! verdict on the same G(z), which takes a second, fake-only discriminator pass. G first (as
//! PyTorch-GAN's recipe): G's loss is D(G(z)) judged by the not-yet-updated D and D's loss sees
//! the same G(z) detached, so one discriminator pass over [real; fake] serves both losses. In
//! both, D's gradient from G's loss is discarded as `optimizer_D.zero_grad()` discards it.

use super::mlp::{allocate_all, initial_all, Backward, BatchnormMode, BatchnormSpec, Forward, LayerSpec, Mlp};
use super::params::{Init, ParamLayout, Parameters};
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, GpuError, Program, Tensor};
use crate::nn::{self, Activation, AdamConfig, GanLossParts};

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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GanConfig {
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
}

impl Default for GanConfig {
    fn default() -> Self {
        GanConfig {
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
        }
    }
}

pub fn layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    let mut generator = Vec::new();
    let mut width = cfg.latent;
    for (i, &h) in cfg.g_hidden.iter().enumerate() {
        let n = i + 1;
        let mut layer = LayerSpec::new(&format!("generator.fc{n}"), width, h, cfg.g_activation);
        if cfg.g_batchnorm && i > 0 {
            layer.batchnorm = Some(BatchnormSpec { name: format!("generator.bn{n}"), eps: cfg.bn_eps, momentum: cfg.bn_momentum });
        }
        generator.push(layer);
        width = h;
    }
    generator.push(LayerSpec::new(&format!("generator.fc{}", cfg.g_hidden.len() + 1), width, IMAGE, cfg.output.activation()));
    let mut discriminator = Vec::new();
    let mut width = IMAGE;
    for (i, &h) in cfg.d_hidden.iter().enumerate() {
        discriminator.push(LayerSpec::new(&format!("discriminator.fc{}", i + 1), width, h, cfg.d_activation));
        width = h;
    }
    discriminator.push(LayerSpec::new(&format!("discriminator.fc{}", cfg.d_hidden.len() + 1), width, 1, Activation::Identity));
    (generator, discriminator)
}

pub struct Gan {
    pub config: GanConfig,
    pub generator: Mlp,
    pub discriminator: Mlp,
    pub params: Parameters,
}

impl Gan {
    pub fn initial(cfg: &GanConfig, seed: u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>) {
        let (g, d) = layers(cfg);
        initial_all(vec![g, d], cfg.init, seed)
    }

    pub fn new(gpu: &Gpu, cfg: &GanConfig, values: &[f32], state: &[f32]) -> Result<Gan, GpuError> {
        let (g, d) = layers(cfg);
        let (mut nets, p, s) = allocate_all(vec![g, d]);
        let discriminator = nets.pop().expect("two networks");
        let generator = nets.pop().expect("two networks");
        let params = Parameters::new(gpu, "gan", p, s, values, state)?;
        Ok(Gan { config: cfg.clone(), generator, discriminator, params })
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

/// The buffers of one GAN training step over a batch of B real images.
pub struct GanGraph {
    pub batch: usize,
    /// [B, latent]
    pub z: Tensor,
    /// [2B, 784]: real images, then G(z), which the generator writes in place
    pub d_in: Tensor,
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
        let z = Tensor::zeros(gpu, "gan.z", &[batch, gan.config.latent])?;
        let d_in = Tensor::zeros(gpu, "discriminator.input", &[2 * batch, IMAGE])?;
        let generator = gan.generator.forward_buffers(gpu, z.region(), Some(d_in.region().rows(batch, batch)))?;
        let discriminator = gan.discriminator.forward_buffers(gpu, d_in.region(), None)?;
        let discriminator_fake = match gan.config.update_order {
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
            generator,
            discriminator,
            discriminator_fake,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn train_program(&self, gpu: &Gpu, gan: &Gan, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, metrics: &Tensor, adam: &AdamConfig) -> Program {
        let cfg = &gan.config;
        let b = self.batch;
        let params = &gan.params;
        let (scale, shift) = cfg.output.data_scale();
        let mut program = Program::default();
        program.phase(
            "data",
            vec![
                nn::gather_rows(gpu, "real", step, &split.pixels.buffer, &split.order.buffer, self.d_in.view().rows(0, b), scale, shift),
                nn::fill_normal(gpu, "z", step, self.z.view(), STREAM_Z, seed),
            ],
        );
        program.phase("generator.forward", gan.generator.forward_launches(gpu, params, &self.generator, BatchnormMode::Train));
        program.phase("discriminator.forward", gan.discriminator.forward_launches(gpu, params, &self.discriminator, BatchnormMode::Train));
        let real_label = 1.0 - cfg.label_smoothing;
        let loss = |parts, logits: &Forward| {
            let (d_grad, g_grad) = (self.d_disc.d_output().view(), self.d_disc_for_g.d_output().view());
            vec![nn::gan_loss(gpu, "gan", parts, logits.output().view(), real_label, 0.0, d_grad, g_grad, &metrics.buffer, D_LOSS)]
        };
        let adam_over = |label, range| {
            vec![nn::adam(gpu, label, adam, step, range, &params.values.buffer, &params.grads.buffer, &params.adam_m.buffer, &params.adam_v.buffer)]
        };
        let (g_range, d_range) = gan.ranges();
        // G's gradient reaches G(z) through D's input gradient on the fake rows, times tanh′.
        let fake = self.d_in.view().rows(b, b);
        let into_generator = Some((self.d_generator.d_output().view(), Some((fake, cfg.output.activation()))));
        match &self.discriminator_fake {
            None => {
                program.phase("loss", loss(GanLossParts::Both, &self.discriminator));
                program.phase("discriminator.backward", gan.discriminator.backward_launches(gpu, params, &self.discriminator, 0, &self.d_disc, true, None));
                let to_g = gan.discriminator.backward_launches(gpu, params, &self.discriminator, b, &self.d_disc_for_g, false, into_generator);
                program.phase("generator.loss.backward", to_g);
                program.phase("generator.backward", gan.generator.backward_launches(gpu, params, &self.generator, 0, &self.d_generator, true, None));
                program.phase("adam", adam_over("gan", 0..params.layout.len));
            }
            Some(judged) => {
                program.phase("discriminator.loss", loss(GanLossParts::Discriminator, &self.discriminator));
                program.phase("discriminator.backward", gan.discriminator.backward_launches(gpu, params, &self.discriminator, 0, &self.d_disc, true, None));
                program.phase("discriminator.adam", adam_over("gan.discriminator", d_range));
                program.phase("discriminator.forward.fake", gan.discriminator.forward_launches(gpu, params, judged, BatchnormMode::Train));
                program.phase("generator.loss", loss(GanLossParts::Generator, judged));
                let to_g = gan.discriminator.backward_launches(gpu, params, judged, 0, &self.d_disc_for_g, false, into_generator);
                program.phase("generator.loss.backward", to_g);
                program.phase("generator.backward", gan.generator.backward_launches(gpu, params, &self.generator, 0, &self.d_generator, true, None));
                program.phase("generator.adam", adam_over("gan.generator", g_range));
            }
        }
        program
    }
}

/// Generates `rows` images from noise drawn with a fixed key (`program`) or placed in `z` by
/// the host (`decode`), batch norm on running statistics.
pub struct GanSampler {
    pub z: Tensor,
    pub generator: Forward,
    pub program: Program,
    pub decode: Program,
}

impl GanSampler {
    pub fn new(gpu: &Gpu, gan: &Gan, rows: usize, step: &wgpu::Buffer, seed: u64) -> Result<GanSampler, GpuError> {
        let z = Tensor::zeros(gpu, "sample.z", &[rows, gan.config.latent])?;
        let generator = gan.generator.forward_buffers(gpu, z.region(), None)?;
        let mut program = Program::default();
        program.phase("noise", vec![nn::fill_normal(gpu, "sample.z", step, z.view(), STREAM_SAMPLE, seed)]);
        program.phase("generator.forward", gan.generator.forward_launches(gpu, &gan.params, &generator, BatchnormMode::Eval));
        let mut decode = Program::default();
        decode.phase("generator.forward", gan.generator.forward_launches(gpu, &gan.params, &generator, BatchnormMode::Eval));
        Ok(GanSampler { z, generator, program, decode })
    }
}
