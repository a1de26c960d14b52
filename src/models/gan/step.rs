//! One GAN training step over a batch: the buffers it needs (`GanGraph`) and the program that
//! records it, phase by phase, in the configured update order.

use super::program::Recorder;
use super::*;
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, GpuError, Launch, Program, Tensor, View};
use crate::models::layers::padded_width;
use crate::models::network::{Backward, BatchnormMode, Forward};
use crate::models::spectral::Normalised;
use crate::models::Weights;
use crate::nn::{self, AdamConfig};

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
    /// tiled kernel, 5% of the step). None where D's input has no label columns (the DCGAN's).
    pub d_label: Option<Tensor>,
    /// [B, k rounded up to 4]: the gradient at G's label columns (and the first z columns);
    /// [B, G's input width] where G's first layer is a convolution, which gives its whole input's
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

/// The buffers of the augmentation (`GanConfig::augment`) between the images and D.
pub struct Augmented {
    /// [2B, 8]: each row's uniform draws, which pick its transform
    pub draws: Tensor,
    /// [2B, D's input width]: what D sees, each row of `d_in` through its transform (label
    /// columns as they are)
    pub seen: Tensor,
    /// [B, C·S·S]: the gradient at the transformed fake images, from G's loss
    pub d_seen_fake: Tensor,
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
    pub augmented: Option<Augmented>,
    pub generator: Forward,
    pub discriminator: Forward,
    /// D-first order only: the updated D's pass over the B fake rows, which G learns from
    pub discriminator_fake: Option<Forward>,
    /// D's gradients from its own loss, over all 2B rows
    pub d_disc: Backward,
    /// D's input gradients from G's loss, over the B fake rows only
    pub d_disc_for_g: Backward,
    pub d_generator: Backward,
    /// Spectral norm: the weights D's passes read, W / σ, and the power iteration's scratch
    pub normalised: Option<Normalised>,
}

impl GanGraph {
    pub fn new(gpu: &Gpu, gan: &Gan, batch: usize) -> Result<GanGraph, GpuError> {
        let cfg = &gan.config;
        gan.generator.check_training(gpu, batch)?;
        gan.discriminator.check_training(gpu, 2 * batch)?;
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
                real: Tensor::zeros(gpu, "gan.real", &[batch, cfg.image.values()])?,
                fake: Tensor::zeros(gpu, "gan.fake", &[batch, cfg.image.values()])?,
                d_label: match cfg.d_label_width() {
                    0 => None,
                    d_k => Some(Tensor::zeros(gpu, "discriminator.label_emb.d_out", &[2 * batch, padded_width(d_k)])?),
                },
                // A first conv layer (pytorch/examples' DCGAN) gives its whole input's gradient.
                g_label: match gan.generator.layers[0].conv_shape() {
                    Some(_) => Tensor::zeros(gpu, "generator.input.d_out", &[batch, g_width])?,
                    None => Tensor::zeros(gpu, "generator.label_emb.d_out", &[batch, padded_width(k)])?,
                },
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
        let augmented = match cfg.augment.is_none() {
            true => None,
            false => Some(Augmented {
                draws: Tensor::zeros(gpu, "gan.augment.draws", &[2 * batch, nn::AUGMENT_DRAWS])?,
                seen: Tensor::zeros(gpu, "discriminator.input.augmented", &[2 * batch, d_width])?,
                d_seen_fake: Tensor::zeros(gpu, "discriminator.input.augmented.d_gen", &[batch, cfg.image.values()])?,
            }),
        };
        // D reads its input from the augmentation when there is one.
        let seen = augmented.as_ref().map_or(d_in.region(), |a| a.seen.region());
        let generator = match &conditioning {
            None => gan.generator.forward_buffers(gpu, z.region(), Some(d_in.region().rows(batch, batch)))?,
            Some(c) => gan.generator.forward_buffers(gpu, c.g_in.region(), Some(c.fake.region()))?,
        };
        let mut discriminator = gan.discriminator.forward_buffers(gpu, seen.clone(), None)?;
        discriminator.groups = 2;
        let discriminator_fake = match cfg.update_order {
            UpdateOrder::DFirst => Some(gan.discriminator.forward_buffers(gpu, seen.rows(batch, batch), None)?),
            UpdateOrder::GFirst => None,
        };
        Ok(GanGraph {
            batch,
            d_disc: gan.discriminator.backward_buffers(gpu, 2 * batch)?,
            d_disc_for_g: gan.discriminator.backward_buffers(gpu, batch)?,
            d_generator: gan.generator.backward_buffers(gpu, batch)?,
            normalised: gan.discriminator.normalised_buffers(gpu, &gan.params)?,
            z,
            d_in,
            conditioning,
            augmented,
            generator,
            discriminator,
            discriminator_fake,
        })
    }

    /// G(z) as [B, 784], wherever the generator wrote it.
    pub(super) fn fake(&self) -> View<'_> {
        match &self.conditioning {
            None => self.d_in.view().rows(self.batch, self.batch),
            Some(c) => c.fake.view(),
        }
    }

    /// The weights D's passes read: W / σ under spectral norm, else the model's own.
    pub(super) fn d_weights<'a>(&'a self, gan: &'a Gan) -> Weights<'a> {
        self.normalised.as_ref().map_or(gan.params.weights(), |n| n.weights(&gan.params))
    }

    /// Under spectral norm, the power iteration and W / σ before a training pass of D.
    pub(super) fn d_spectral(&self, gpu: &Gpu, gan: &Gan) -> Vec<Launch> {
        self.normalised.as_ref().map_or(Vec::new(), |n| gan.discriminator.spectral_forward(gpu, &gan.params, n))
    }

    /// [2B, D's input width]: the rows D reads, augmented or not.
    pub(super) fn d_seen(&self) -> &Tensor {
        self.augmented.as_ref().map_or(&self.d_in, |a| &a.seen)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn train_program(&self, gpu: &Gpu, gan: &Gan, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, metrics: &Tensor, adam: &AdamConfig) -> Program {
        let (g_adam, d_adam) = gan.config.adam(adam);
        let r = Recorder { graph: self, gpu, gan, step, metrics, g_adam, d_adam };
        let mut program = Program::default();
        r.data(&mut program, split, seed);
        program.phase("generator.forward", gan.generator.forward_launches(gpu, &gan.params, &self.generator, BatchnormMode::Train));
        if self.conditioning.is_some() {
            let fake_images = self.d_in.view().rows(self.batch, self.batch).columns(0, gan.config.image.values());
            program.phase("condition.fake", vec![nn::copy_columns(gpu, "discriminator.input", self.fake(), fake_images)]);
        }
        r.augment(&mut program);
        let mut judge = self.d_spectral(gpu, gan);
        judge.extend(gan.discriminator.forward_launches(gpu, self.d_weights(gan), &self.discriminator, BatchnormMode::Train));
        program.phase("discriminator.forward", judge);
        match &self.discriminator_fake {
            None => r.g_first(&mut program),
            Some(judged) => r.d_first(&mut program, judged),
        }
        r.average(&mut program);
        program
    }
}
