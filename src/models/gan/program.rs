//! The phases of one recorded GAN step, in the order `GanGraph::train_program` calls them: the
//! data (and, conditioned, the label vectors beside it), the two forward passes, then the
//! update order's losses, backward passes and Adam, and last G's average.

use super::*;
use crate::data::DeviceSplit;
use crate::gpu::{Launch, Program, Tensor};
use crate::models::network::{BatchnormMode, Forward, InputGrad};
use crate::nn::{self, AdamConfig, GanLossParts, LabelVectors};

/// What every phase records against: the step's buffers, the model and each network's Adam.
pub(super) struct Recorder<'a> {
    pub graph: &'a GanGraph,
    pub gpu: &'a Gpu,
    pub gan: &'a Gan,
    pub step: &'a wgpu::Buffer,
    pub metrics: &'a Tensor,
    pub g_adam: AdamConfig,
    pub d_adam: AdamConfig,
}

impl Recorder<'_> {
    /// The real batch (scaled to G's output range) and z; conditioned, the real rows' labels,
    /// the fake rows' drawn labels, and both networks' inputs with their label vectors.
    pub fn data(&self, program: &mut Program, split: &DeviceSplit, seed: u64) {
        let (gpu, step, g, b) = (self.gpu, self.step, self.graph, self.graph.batch);
        let (scale, shift) = self.gan.config.output.data_scale();
        let (pixels, order) = (&split.pixels.buffer, &split.order.buffer);
        let z = nn::fill_normal(gpu, "z", step, g.z.view(), STREAM_Z, seed);
        let (Some(c), Some(k), Some((g_table, _))) = (&g.conditioning, self.gan.config.classes, self.gan.embedding(G_EMBEDDING)) else {
            let mut data = vec![nn::gather_rows(gpu, "real", step, pixels, order, g.d_in.view().rows(0, b), scale, shift), z];
            data.extend(self.draws(seed));
            program.phase("data", data);
            return;
        };
        let labels = c.labels.view();
        let d_in = g.d_in.view();
        let image = self.gan.config.image.values();
        let mut data = vec![
            nn::gather_rows(gpu, "real", step, pixels, order, c.real.view(), scale, shift),
            nn::gather_labels(gpu, "real", step, &split.labels.buffer, order, labels.rows(0, b)),
            nn::fill_labels(gpu, "fake", step, labels.rows(b, b), k, STREAM_LABELS, seed),
            z,
        ];
        data.extend(self.draws(seed));
        program.phase("data", data);
        let mut condition = vec![
            nn::embedding_forward(gpu, "generator.label_emb", labels.rows(b, b), LabelVectors::Table(g_table), c.g_in.view().columns(0, k)),
            nn::copy_columns(gpu, "generator.input", g.z.view(), c.g_in.view().columns(k, self.gan.config.latent)),
            nn::copy_columns(gpu, "discriminator.input", c.real.view(), d_in.rows(0, b).columns(0, image)),
        ];
        if let Some((d_table, _)) = self.gan.embedding(D_EMBEDDING) {
            condition.push(nn::embedding_forward(gpu, "discriminator.label_emb", labels, LabelVectors::Table(d_table), d_in.columns(image, k)));
        }
        program.phase("condition", condition);
    }

    /// Each row's uniform draws for its augmentation, when D sees augmented images.
    fn draws(&self, seed: u64) -> Option<Launch> {
        let a = self.graph.augmented.as_ref()?;
        Some(nn::fill_uniform(self.gpu, "gan.augment", self.step, a.draws.view(), STREAM_AUGMENT, seed))
    }

    /// [real; G(z)] (with their label columns) through each row's transform, into what D sees.
    pub fn augment(&self, program: &mut Program) {
        let Some(a) = &self.graph.augmented else { return };
        let cfg = &self.gan.config;
        let shape = (cfg.image.channels, cfg.image.side);
        program.phase("discriminator.augment", vec![nn::diff_augment(self.gpu, "discriminator.augment", cfg.augment, a.draws.view(), self.graph.d_in.view(), a.seen.view(), shape)]);
    }

    /// G first: one loss over D's pass on [real; fake] serves both networks; D's backward, then
    /// G's gradient through the old D, G's backward, one Adam over both (or one each).
    pub fn g_first(&self, program: &mut Program) {
        let (params, g) = (&self.gan.params, self.graph);
        program.phase("loss", self.loss(GanLossParts::Both, &g.discriminator, 0));
        program.phase("discriminator.backward", self.discriminator_backward());
        program.phase("generator.loss.backward", self.to_generator(&g.discriminator, g.batch));
        program.phase("generator.backward", self.generator_backward());
        let (g_range, d_range) = self.gan.ranges();
        if self.g_adam == self.d_adam {
            program.phase("adam", self.adam("gan", 0..params.layout.len, &self.g_adam));
        } else {
            let mut both = self.adam("gan.generator", g_range, &self.g_adam);
            both.extend(self.adam("gan.discriminator", d_range, &self.d_adam));
            program.phase("adam", both);
        }
    }

    /// D first: D's loss, backward and Adam; then the updated D judges the fake rows again
    /// (`judged`), and G learns from that verdict.
    pub fn d_first(&self, program: &mut Program, judged: &Forward) {
        let (gpu, g, b) = (self.gpu, self.graph, self.graph.batch);
        let (g_range, d_range) = self.gan.ranges();
        program.phase("discriminator.loss", self.loss(GanLossParts::Discriminator, &g.discriminator, 0));
        program.phase("discriminator.backward", self.discriminator_backward());
        program.phase("discriminator.adam", self.adam("gan.discriminator", d_range, &self.d_adam));
        let mut judge = g.d_spectral(gpu, self.gan);
        let d_table = self.gan.embedding(D_EMBEDDING);
        if let (Some(c), Some(k), Some((d_table, _))) = (&g.conditioning, self.gan.config.classes, d_table) {
            // The updated D embeds the fake rows' labels afresh, as D(G(z), labels) would.
            let fake_rows = g.d_seen().view().rows(b, b).columns(self.gan.config.image.values(), k);
            judge.push(nn::embedding_forward(gpu, "discriminator.label_emb", c.labels.view().rows(b, b), LabelVectors::Table(d_table), fake_rows));
        }
        judge.extend(self.gan.discriminator.forward_launches(gpu, g.d_weights(self.gan), judged, BatchnormMode::Train));
        program.phase("discriminator.forward.fake", judge);
        program.phase("generator.loss", self.loss(GanLossParts::Generator, judged, b));
        program.phase("generator.loss.backward", self.to_generator(judged, 0));
        program.phase("generator.backward", self.generator_backward());
        program.phase("generator.adam", self.adam("gan.generator", g_range, &self.g_adam));
    }

    /// After G's update and its forward pass's running statistics, as the PyTorch loop's update
    /// of its averaged copy.
    pub fn average(&self, program: &mut Program) {
        let params = &self.gan.params;
        let Some(avg) = &params.average else { return };
        let mut launches = vec![nn::ema(self.gpu, "generator.average", avg.decay, self.step, avg.range.clone(), &avg.values.buffer, &params.values.buffer)];
        if !avg.state_range.is_empty() {
            launches.push(nn::ema(self.gpu, "generator.average.state", avg.decay, self.step, avg.state_range.clone(), &avg.state.buffer, &params.state.buffer));
        }
        program.phase("generator.average", launches);
    }

    /// The loss `parts` over D's output `heads`, whose rows start at row `first` of [real; fake];
    /// with a projection D, each row's class head added first, and its gradient split back.
    fn loss(&self, parts: GanLossParts, heads: &Forward, first: usize) -> Vec<Launch> {
        let (gpu, g, b) = (self.gpu, self.graph, self.graph.batch);
        let real_label = 1.0 - self.gan.config.label_smoothing;
        let (d_heads, g_heads) = (g.d_disc.d_output().view(), g.d_disc_for_g.d_output().view());
        let metrics = &self.metrics.buffer;
        let Some((c, p)) = g.conditioning.as_ref().and_then(|c| c.projection.as_ref().map(|p| (c, p))) else {
            return vec![nn::gan_loss(gpu, "gan", self.gan.config.loss, parts, heads.output().view(), real_label, 0.0, d_heads, g_heads, metrics, D_LOSS)];
        };
        let rows = heads.output().rows;
        let logits = p.logits.view().rows(0, rows);
        let labels = c.labels.view();
        let mut launches = vec![
            nn::class_logit_forward(gpu, "discriminator.projection", labels.rows(first, rows), heads.output().view(), logits),
            nn::gan_loss(gpu, "gan", self.gan.config.loss, parts, logits, real_label, 0.0, p.d_logits.view(), p.g_logits.view(), metrics, D_LOSS),
        ];
        if parts != GanLossParts::Generator {
            launches.push(nn::class_logit_backward(gpu, "discriminator.projection", labels, p.d_logits.view(), d_heads));
        }
        if parts != GanLossParts::Discriminator {
            launches.push(nn::class_logit_backward(gpu, "discriminator.projection", labels.rows(b, b), p.g_logits.view(), g_heads));
        }
        launches
    }

    /// G's gradient reaches G(z) through D's input gradient on the fake rows' image columns
    /// (from D's pass `judged`, whose fake rows start at row `start`), back through their
    /// augmentation when there is one, times tanh′.
    fn to_generator(&self, judged: &Forward, start: usize) -> Vec<Launch> {
        let (gpu, g, b) = (self.gpu, self.graph, self.graph.batch);
        let (d_fake, act) = (g.d_generator.d_output().view(), self.gan.config.output.activation());
        let into = match &g.augmented {
            Some(a) => InputGrad::all(a.d_seen_fake.view()),
            None => InputGrad { from: 0, dx: d_fake, prev: Some((g.fake(), act)) },
        };
        let mut launches = self.gan.discriminator.backward_launches(gpu, g.d_weights(self.gan), judged, start, &g.d_disc_for_g, None, &[into]);
        if let Some(a) = &g.augmented {
            let cfg = &self.gan.config;
            let shape = (cfg.image.channels, cfg.image.side);
            launches.push(nn::diff_augment_backward(gpu, "discriminator.augment", cfg.augment, a.draws.view().rows(b, b), a.d_seen_fake.view(), d_fake, Some((g.fake(), act)), shape));
        }
        launches
    }

    /// D's backward from its own loss over all rows; conditioned, also the gradient at its label
    /// columns, into its embedding.
    fn discriminator_backward(&self) -> Vec<Launch> {
        let (gpu, params, g) = (self.gpu, &self.gan.params, self.graph);
        let label_grad = match g.conditioning.as_ref().and_then(|c| c.d_label.as_ref()) {
            Some(d_label) => vec![InputGrad::all(d_label.view()).from_column(self.gan.config.image.values())],
            None => Vec::new(),
        };
        let mut launches = self.gan.discriminator.backward_launches(gpu, g.d_weights(self.gan), &g.discriminator, 0, &g.d_disc, Some(&params.grads.buffer), &label_grad);
        if let Some(n) = &g.normalised {
            launches.extend(self.gan.discriminator.spectral_backward(gpu, params, n));
        }
        if let (Some(c), Some((_, d_grad))) = (&g.conditioning, self.gan.embedding(D_EMBEDDING)) {
            let d_label = c.d_label.as_ref().expect("D's label columns beside its table");
            launches.push(nn::embedding_backward(gpu, "discriminator.label_emb", c.labels.view(), d_label.view().columns(0, d_grad.cols), d_grad));
        }
        launches
    }

    /// G's backward; conditioned, also the gradient at its label columns, into its embedding.
    fn generator_backward(&self) -> Vec<Launch> {
        let (gpu, params, g, b) = (self.gpu, &self.gan.params, self.graph, self.graph.batch);
        let label_grad = match &g.conditioning {
            Some(c) => vec![InputGrad::all(c.g_label.view())],
            None => Vec::new(),
        };
        let mut launches = self.gan.generator.backward_launches(gpu, params, &g.generator, 0, &g.d_generator, Some(&params.grads.buffer), &label_grad);
        if let (Some(c), Some((_, g_grad))) = (&g.conditioning, self.gan.embedding(G_EMBEDDING)) {
            launches.push(nn::embedding_backward(gpu, "generator.label_emb", c.labels.view().rows(b, b), c.g_label.view().columns(0, g_grad.cols), g_grad));
        }
        launches
    }

    /// Adam over `range` of the flat buffer.
    fn adam(&self, label: &str, range: std::ops::Range<usize>, adam: &AdamConfig) -> Vec<Launch> {
        let p = &self.gan.params;
        vec![nn::adam(self.gpu, label, adam, self.step, range, &p.values.buffer, &p.grads.buffer, &p.adam_m.buffer, &p.adam_v.buffer)]
    }
}
