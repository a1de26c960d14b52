//! The VAE: encoder 784 → 256 → 128 → (mu, logvar) [latent], z = mu + exp(logvar/2)·eps,
//! decoder latent → 128 → 256 → 784 logits. Loss per image: BCE summed over pixels + KL.
//!
//! Conditioned on k classes (the CVAE), the encoder sees [image | one-hot(label)] and the
//! decoder [z | one-hot(label)]. A one-hot rather than a learned embedding: the label is given,
//! not inferred, so the model only needs each class's own first-layer column (which a one-hot
//! selects exactly), it adds no parameters, and it is what CVAE write-ups use.
//!
//! With `class_prior` the prior is p(z|y) = N(m_y, I), a learned mean per class (`prior.mean`
//! [k, latent], Sohn et al.'s prior network reduced to a table): the encoder's mu is read as an
//! offset from m_y, so z = m_y + mu + σ·eps and the KL term keeps its closed form in the
//! offset. Under N(0, I) for every class the encoder must strip the class from z to avoid its
//! KL cost, slowly, and until it has, prior samples carry some class the label does not ask for.

use super::layers::{Init, LayerSpec};
use super::network::{allocate_all, initial_all, BatchnormMode, Backward, Forward, InputGrad, Network};
use super::params::{ParamLayout, Parameters};
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, GpuError, Launch, Program, Tensor, View};
use crate::nn::{self, Activation, AdamConfig, ConvShape, LabelVectors};

use crate::data::ImageShape;


mod sample;

pub use sample::{pixel, sample_images, VaeSampler};

/// Metric slots: the training loss parts accumulate over an epoch, the test parts over the test split.
pub const TRAIN_RECON: usize = 0;
pub const TRAIN_KL: usize = 1;
pub const TEST_RECON: usize = 2;
pub const TEST_KL: usize = 3;
pub const METRIC_SLOTS: usize = 4;

/// Noise streams: each use site draws independent numbers.
pub const STREAM_EPS: u32 = 1;
pub const STREAM_EVAL_EPS: u32 = 3;
pub const STREAM_SAMPLE: u32 = 4;
pub const STREAM_IWAE: u32 = 5;

/// The encoder's and decoder's layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaeArch {
    /// Linear layers of `hidden` widths.
    #[default]
    Mlp,
    /// `wgen train conv-vae`: encoder Conv2d(1→32, k4 s2 p1) → ReLU → Conv2d(32→64, k4 s2 p1)
    /// → ReLU → flatten 3136 → Linear 256 → ReLU → (mu, logvar); decoder Linear 256 → ReLU →
    /// Linear 3136 → ReLU → [64, 7, 7] → ConvTranspose2d(64→32, k4 s2 p1) → ReLU →
    /// ConvTranspose2d(32→1, k4 s2 p1) → logits. Conditioned on k classes, the encoder's
    /// conv1 reads k more channels, the label's one-hot planes (all ones in its class's
    /// channel), and the decoder's fc1 reads [z | one-hot], as the MLP CVAE's.
    Conv,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VaeConfig {
    #[serde(default)]
    pub arch: VaeArch,
    /// Mlp: the encoder's hidden widths (the decoder mirrors them).
    pub hidden: Vec<usize>,
    pub latent: usize,
    pub init: Init,
    /// Conditioned on this many classes (`--conditional`); absent for the plain VAE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Conditioned on a folder's classes: their names (its subfolders, in label order), so a
    /// class can be asked for by name; absent for numbered classes and files from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// Conditioned: a learned prior mean per class instead of N(0, I) for all.
    #[serde(default)]
    pub class_prior: bool,
    /// The images it encodes and decodes, set from the data (files from before: MNIST's).
    #[serde(default)]
    pub image: ImageShape,
}

pub const PRIOR_MEAN: &str = "prior.mean";

impl VaeConfig {
    /// The width of the one-hot label in each network's input (0 unconditioned).
    pub fn label_width(&self) -> usize {
        self.classes.unwrap_or(0)
    }

    /// The class count when the prior has a learned mean per class.
    pub fn prior_classes(&self) -> Option<usize> {
        self.classes.filter(|_| self.class_prior)
    }
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig { arch: VaeArch::Mlp, hidden: vec![256, 128], latent: 32, init: Init::Torch, classes: None, class_names: None, class_prior: false, image: ImageShape::MNIST }
    }
}

pub fn layers(cfg: &VaeConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    if cfg.arch == VaeArch::Conv {
        return conv_layers(cfg);
    }
    let relu = Activation::Relu;
    let mut encoder = Vec::new();
    let mut width = cfg.image.values() + cfg.label_width();
    for (i, &h) in cfg.hidden.iter().enumerate() {
        encoder.push(LayerSpec::new(&format!("encoder.fc{}", i + 1), width, h, relu));
        width = h;
    }
    encoder.push(LayerSpec {
        heads: vec!["encoder.mu".into(), "encoder.logvar".into()],
        ..LayerSpec::new("encoder.head", width, 2 * cfg.latent, Activation::Identity)
    });
    let mut decoder = Vec::new();
    let mut width = cfg.latent + cfg.label_width();
    for (i, &h) in cfg.hidden.iter().rev().enumerate() {
        decoder.push(LayerSpec::new(&format!("decoder.fc{}", i + 1), width, h, relu));
        width = h;
    }
    decoder.push(LayerSpec::new("decoder.out", width, cfg.image.values(), Activation::Identity));
    if cfg.classes.is_some() {
        encoder[0] = encoder[0].clone().padded();
        decoder[0] = decoder[0].clone().padded();
    }
    (encoder, decoder)
}

/// The conv VAE's layers (`VaeArch::Conv`), named as its PyTorch module's.
fn conv_layers(cfg: &VaeConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    let relu = Activation::Relu;
    let ImageShape { channels, side } = cfg.image;
    let conv1 = ConvShape::conv2d(channels + cfg.label_width(), 32, side, side, 4, 2, 1);
    let conv2 = ConvShape::conv2d(32, 64, side / 2, side / 2, 4, 2, 1);
    let encoder = vec![
        LayerSpec::conv2d("encoder.conv1", conv1, relu),
        LayerSpec::conv2d("encoder.conv2", conv2, relu),
        LayerSpec::new("encoder.fc", conv2.out_len(), 256, relu),
        LayerSpec {
            heads: vec!["encoder.mu".into(), "encoder.logvar".into()],
            ..LayerSpec::new("encoder.head", 256, 2 * cfg.latent, Activation::Identity)
        },
    ];
    let deconv1 = ConvShape::transposed(64, 32, side / 4, side / 4, 4, 2, 1);
    let deconv2 = ConvShape::transposed(32, channels, side / 2, side / 2, 4, 2, 1);
    let fc1 = LayerSpec::new("decoder.fc1", cfg.latent + cfg.label_width(), 256, relu);
    let decoder = vec![
        if cfg.classes.is_some() { fc1.padded() } else { fc1 },
        LayerSpec::new("decoder.fc2", 256, deconv1.out_len(), relu),
        LayerSpec::conv_transpose2d("decoder.deconv1", deconv1, relu),
        LayerSpec::conv_transpose2d("decoder.deconv2", deconv2, Activation::Identity),
    ];
    (encoder, decoder)
}

/// The widths of the encoder's and decoder's inputs as stored: real columns, then zero padding.
pub fn input_widths(cfg: &VaeConfig) -> (usize, usize) {
    let (e, d) = layers(cfg);
    (e[0].inp, d[0].inp)
}

pub struct Vae {
    pub config: VaeConfig,
    pub encoder: Network,
    pub decoder: Network,
    pub params: Parameters,
}

impl Vae {
    /// The parameter layout and freshly initialised values for `cfg`.
    /// The class prior means start at zero: the standard CVAE's prior.
    pub fn initial(cfg: &VaeConfig, seed: u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>) {
        let (enc, dec) = layers(cfg);
        let (mut params, state, mut values, state_values) = initial_all(vec![enc, dec], cfg.init, seed);
        if let Some(k) = cfg.prior_classes() {
            params.push_block(&[(PRIOR_MEAN.to_string(), vec![k, cfg.latent])]);
            values.resize(params.len, 0.0);
        }
        (params, state, values, state_values)
    }

    /// A VAE on the GPU with the given parameter values (fresh, or from a checkpoint).
    pub fn new(gpu: &Gpu, cfg: &VaeConfig, values: &[f32], state: &[f32]) -> Result<Vae, GpuError> {
        let (enc, dec) = layers(cfg);
        let (mut nets, mut p, s) = allocate_all(vec![enc, dec]);
        if let Some(k) = cfg.prior_classes() {
            p.push_block(&[(PRIOR_MEAN.to_string(), vec![k, cfg.latent])]);
        }
        let decoder = nets.pop().expect("two networks");
        let encoder = nets.pop().expect("two networks");
        let params = Parameters::new(gpu, "vae", p, s, values, state)?;
        Ok(Vae { config: cfg.clone(), encoder, decoder, params })
    }
}

impl Vae {
    /// The most rows one graph of this VAE may have: its widest per-row buffer (a conv layer's
    /// receptive fields: 25,088 values an image) must fit in one storage binding.
    pub fn max_rows(&self, gpu: &Gpu) -> usize {
        let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size) as usize;
        (limit / (4 * self.encoder.widest_row().max(self.decoder.widest_row()))).max(1)
    }

    /// The class prior means [k, latent] and their gradient, when the prior has them.
    pub fn prior_mean(&self) -> Option<(View<'_>, View<'_>)> {
        self.params.matrix(PRIOR_MEAN)
    }
}

/// One forward pass of the whole VAE over `rows` images, with what the loss needs.
pub struct VaeGraph {
    pub rows: usize,
    /// [rows, C·H·W] images in [0, 1]
    pub x: Tensor,
    /// [rows, latent]
    pub eps: Tensor,
    pub z: Tensor,
    /// [rows] KL and reconstruction terms per image
    pub kl_row: Tensor,
    pub recon_row: Tensor,
    pub encoder: Forward,
    pub decoder: Forward,
    /// Gradients (a training graph backpropagates through them; evaluation leaves them be).
    pub d_encoder: Backward,
    pub d_decoder: Backward,
    /// [rows, latent]
    pub dz: Tensor,
    pub conditioning: Option<VaeConditioning>,
}

/// The extra buffers of a CVAE's pass.
pub struct VaeConditioning {
    /// [rows] class indices as f32
    pub labels: Tensor,
    /// MLP: [rows, C·H·W + k + pad]: [x | one-hot | zeros]; conv: [rows, (C + k)·H·W]: x's
    /// planes, then the label's one-hot planes
    pub enc_in: Tensor,
    /// [rows, latent + k + pad]: [z | one-hot | zeros]
    pub dec_in: Tensor,
}

impl VaeGraph {
    pub fn new(gpu: &Gpu, vae: &Vae, rows: usize, label: &str) -> Result<VaeGraph, GpuError> {
        let latent = vae.config.latent;
        let x = Tensor::zeros(gpu, &format!("{label}.x"), &[rows, vae.config.image.values()])?;
        let eps = Tensor::zeros(gpu, &format!("{label}.eps"), &[rows, latent])?;
        let z = Tensor::zeros(gpu, &format!("{label}.z"), &[rows, latent])?;
        let (enc_width, dec_width) = input_widths(&vae.config);
        let conditioning = match vae.config.classes {
            None => None,
            Some(_) => Some(VaeConditioning {
                labels: Tensor::zeros(gpu, &format!("{label}.labels"), &[rows])?,
                enc_in: Tensor::zeros(gpu, &format!("{label}.encoder.input"), &[rows, enc_width])?,
                dec_in: Tensor::zeros(gpu, &format!("{label}.decoder.input"), &[rows, dec_width])?,
            }),
        };
        let (enc_in, dec_in) = match &conditioning {
            None => (x.region(), z.region()),
            Some(c) => (c.enc_in.region(), c.dec_in.region()),
        };
        let encoder = vae.encoder.forward_buffers(gpu, enc_in, None)?;
        let decoder = vae.decoder.forward_buffers(gpu, dec_in, None)?;
        Ok(VaeGraph {
            rows,
            kl_row: Tensor::zeros(gpu, &format!("{label}.kl_row"), &[rows])?,
            recon_row: Tensor::zeros(gpu, &format!("{label}.recon_row"), &[rows])?,
            d_encoder: vae.encoder.backward_buffers(gpu, rows)?,
            d_decoder: vae.decoder.backward_buffers(gpu, rows)?,
            dz: Tensor::zeros(gpu, &format!("{label}.dz"), &[rows, latent])?,
            conditioning,
            x,
            eps,
            z,
            encoder,
            decoder,
        })
    }

    /// The batch's images in [0, 1] and, conditioned, its labels placed in both inputs.
    fn data_launches(&self, gpu: &Gpu, vae: &Vae, split: &DeviceSplit, step: &wgpu::Buffer) -> Vec<Launch> {
        let mut launches = vec![nn::gather_rows(gpu, "x", step, &split.pixels.buffer, &split.order.buffer, self.x.view(), 1.0 / 255.0, 0.0)];
        if let Some(c) = &self.conditioning {
            let (k, latent, image) = (vae.config.label_width(), vae.config.latent, vae.config.image.values());
            // The conv encoder reads the label as k image channels; the MLP's as k columns.
            let (label_vectors, label_width) = match vae.config.arch {
                VaeArch::Conv => (LabelVectors::OneHotPlanes { plane: vae.config.image.pixels() }, k * vae.config.image.pixels()),
                VaeArch::Mlp => (LabelVectors::OneHot, k),
            };
            launches.extend([
                nn::gather_labels(gpu, "labels", step, &split.labels.buffer, &split.order.buffer, c.labels.view()),
                nn::copy_columns(gpu, "encoder.input", self.x.view(), c.enc_in.view().columns(0, image)),
                nn::embedding_forward(gpu, "encoder.one_hot", c.labels.view(), label_vectors, c.enc_in.view().columns(image, label_width)),
                nn::embedding_forward(gpu, "decoder.one_hot", c.labels.view(), LabelVectors::OneHot, c.dec_in.view().columns(latent, k)),
            ]);
        }
        launches
    }

    /// z = mu + exp(logvar/2)·eps, and the KL term; conditioned, z joins the decoder's input
    /// (shifted by its class's prior mean when the prior has one).
    fn reparam_launches(&self, gpu: &Gpu, vae: &Vae) -> Vec<Launch> {
        let stats = self.encoder.output().view();
        let mut launches = vec![nn::reparam_kl_forward(gpu, "latent", stats, self.eps.view(), self.z.view(), self.kl_row.view())];
        if let Some(c) = &self.conditioning {
            let z_cols = c.dec_in.view().columns(0, vae.config.latent);
            launches.push(nn::copy_columns(gpu, "decoder.input", self.z.view(), z_cols));
            if let Some((means, _)) = vae.prior_mean() {
                launches.push(nn::embedding_add(gpu, "prior.mean", c.labels.view(), LabelVectors::Table(means), z_cols));
            }
        }
        launches
    }

    /// Gather, noise, encoder, reparameterisation, decoder and the loss, accumulating the
    /// per-image means of the two loss terms into metrics[recon_slot] and [kl_slot] times
    /// `metric_scale`.
    #[allow(clippy::too_many_arguments)]
    fn forward_and_loss(
        &self, gpu: &Gpu, vae: &Vae, program: &mut Program, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, stream: u32,
        metrics: &Tensor, slots: (usize, usize), metric_scale: f32,
    ) {
        let scale = 1.0 / self.rows as f32;
        let mut data = self.data_launches(gpu, vae, split, step);
        data.push(nn::fill_normal(gpu, "eps", step, self.eps.view(), stream, seed));
        program.phase("data", data);
        program.phase("encoder.forward", vae.encoder.forward_launches(gpu, &vae.params, &self.encoder, BatchnormMode::Train));
        program.phase("reparameterise", self.reparam_launches(gpu, vae));
        program.phase("decoder.forward", vae.decoder.forward_launches(gpu, &vae.params, &self.decoder, BatchnormMode::Train));
        program.phase(
            "loss",
            vec![
                nn::bce_logits(gpu, "recon", self.decoder.output().view(), Ok(self.x.view()), scale, self.d_decoder.d_output().view(), self.recon_row.view()),
                nn::sum_accumulate(gpu, "recon", self.recon_row.view(), &metrics.buffer, slots.0, metric_scale),
                nn::sum_accumulate(gpu, "kl", self.kl_row.view(), &metrics.buffer, slots.1, metric_scale),
            ],
        );
    }

    /// One training step: forward, loss (mean over the batch of per-image BCE sum + KL),
    /// backward and Adam, with no readback.
    #[allow(clippy::too_many_arguments)]
    pub fn train_program(&self, gpu: &Gpu, vae: &Vae, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, metrics: &Tensor, adam: &AdamConfig) -> Program {
        let mut program = Program::default();
        let scale = 1.0 / self.rows as f32;
        self.forward_and_loss(gpu, vae, &mut program, split, step, seed, STREAM_EPS, metrics, (TRAIN_RECON, TRAIN_KL), scale);
        let params = &vae.params;
        program.phase(
            "decoder.backward",
            vae.decoder.backward_launches(gpu, params, &self.decoder, 0, &self.d_decoder, Some(&params.grads.buffer), &[InputGrad::all(self.dz.view())]),
        );
        if let (Some(c), Some((_, d_means))) = (&self.conditioning, vae.prior_mean()) {
            // z = m_y + offset: each class's mean gathers the gradient of its rows' z.
            program.phase("prior.backward", vec![nn::embedding_backward(gpu, "prior.mean", c.labels.view(), self.dz.view(), d_means)]);
        }
        let stats = self.encoder.output().view();
        program.phase(
            "reparameterise.backward",
            vec![nn::reparam_kl_backward(gpu, "latent", stats, self.eps.view(), self.dz.view(), self.d_encoder.d_output().view(), scale)],
        );
        program.phase("encoder.backward", vae.encoder.backward_launches(gpu, params, &self.encoder, 0, &self.d_encoder, Some(&params.grads.buffer), &[]));
        program.phase(
            "adam",
            vec![nn::adam(gpu, "vae", adam, step, 0..params.layout.len, &params.values.buffer, &params.grads.buffer, &params.adam_m.buffer, &params.adam_v.buffer)],
        );
        program
    }

    /// Reconstructions of `rows` images of `split` from their posterior means (eps stays 0).
    pub fn reconstruct_program(&self, gpu: &Gpu, vae: &Vae, split: &DeviceSplit, step: &wgpu::Buffer) -> Program {
        let mut program = Program::default();
        program.phase("data", self.data_launches(gpu, vae, split, step));
        program.phase("encoder.forward", vae.encoder.forward_launches(gpu, &vae.params, &self.encoder, BatchnormMode::Eval));
        program.phase("reparameterise", self.reparam_launches(gpu, vae));
        program.phase("decoder.forward", vae.decoder.forward_launches(gpu, &vae.params, &self.decoder, BatchnormMode::Eval));
        program
    }

    /// The importance-weighted bound over `rows` = images × k rows (each image repeated k times
    /// by `split`'s order): log (1/k Σ_k w) per image, summed into metrics[slot].
    #[allow(clippy::too_many_arguments)]
    pub fn iwae_program(
        &self, gpu: &Gpu, vae: &Vae, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, k: usize, weights: &Tensor, per_image: &Tensor,
        metrics: &Tensor, slot: usize,
    ) -> Program {
        let mut program = Program::default();
        // Its loss parts land in slots 0 and 1, which the caller leaves unread.
        self.forward_and_loss(gpu, vae, &mut program, split, step, seed, STREAM_IWAE, metrics, (0, 1), 1.0);
        let stats = self.encoder.output().view();
        program.phase(
            "importance weights",
            vec![
                nn::iwae_log_weight(gpu, "iwae", stats, self.eps.view(), self.z.view(), self.recon_row.view(), weights.view()),
                nn::logsumexp_groups(gpu, "iwae", weights.view(), k, per_image.view()),
                nn::sum_accumulate(gpu, "iwae", per_image.view(), &metrics.buffer, slot, 1.0),
            ],
        );
        program
    }

    /// The test loss of `rows` images (eps drawn per chunk from a fixed key), summed into
    /// metrics[TEST_RECON] and [TEST_KL].
    pub fn eval_program(&self, gpu: &Gpu, vae: &Vae, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, metrics: &Tensor) -> Program {
        let mut program = Program::default();
        self.forward_and_loss(gpu, vae, &mut program, split, step, seed, STREAM_EVAL_EPS, metrics, (TEST_RECON, TEST_KL), 1.0);
        program
    }
}
