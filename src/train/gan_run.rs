use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{grid_classes, epoch_grid, grid_rows, GRID_COLS, metadata, round, save_grid, StepCore, TrainConfig, Trainee};
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, Tensor};
use crate::models::gan::{sample_images, Gan, GanGraph, GanSampler, D_FAKE, D_LOSS, D_REAL, G_LOSS, METRIC_SLOTS};
use crate::models::{ask_classes, cycling_classes, Parameters};
use crate::nn::StepBuffer;

pub struct GanRun {
    gan: Gan,
    core: StepCore,
    sampler: GanSampler,
    sample_step: StepBuffer,
    seed: u64,
    /// Kept alive for the buffers the program binds.
    _graph: GanGraph,
}

impl GanRun {
    pub fn new(gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit) -> Result<GanRun> {
        let gc = cfg.gan.clone().unwrap_or_default();
        let (_, _, values, state) = Gan::initial(&gc, cfg.seed);
        let gan = Gan::new(gpu, &gc, &values, &state)?;
        let metrics = Tensor::zeros(gpu, "gan.metrics", &[METRIC_SLOTS])?;
        let steps = StepBuffer::new(gpu, "gan.train", cfg.steps_per_submit);
        let graph = GanGraph::new(gpu, &gan, cfg.batch)?;
        let program = graph.train_program(gpu, &gan, train, &steps.uniform, cfg.seed, &metrics, &cfg.adam);
        let sample_step = StepBuffer::new(gpu, "gan.sample", 1);
        let sampler = GanSampler::new(gpu, &gan, grid_rows(gc.classes), &sample_step.uniform, cfg.seed)?;
        let core = StepCore { batch: cfg.batch, steps, program, metrics };
        Ok(GanRun { gan, core, sampler, sample_step, seed: cfg.seed, _graph: graph })
    }

    /// Samples from the run's fixed noise, in [0, 1]: a row of 8 per class when conditioned,
    /// or every one of `class`.
    pub async fn grid(&self, gpu: &Gpu, class: Option<usize>) -> Result<Vec<f32>> {
        if let (Some(labels), Some(k)) = (&self.sampler.labels, self.gan.config.classes) {
            ask_classes(gpu, labels, &grid_classes(k, class));
        }
        self.sampler.program.run(gpu, "gan.sample");
        let output = self.gan.config.output;
        Ok(self.sampler.generator.output().read_rows_async(gpu, self.sampler.generator.rows, |v| output.to_unit(v)).await?)
    }
}

impl Trainee for GanRun {
    fn core(&self) -> &StepCore {
        &self.core
    }

    fn parameters(&self) -> &Parameters {
        &self.gan.params
    }

    fn before_readback(&mut self, _gpu: &Gpu) -> Result<()> {
        Ok(())
    }

    fn epoch_record(&mut self, gpu: &Gpu, epoch: u32, sums: &[f32], steps: usize, out: &Path) -> Result<Map<String, Value>> {
        let mean = |slot: usize| round(f64::from(sums[slot]) / steps as f64, 4);
        let samples = pollster::block_on(self.grid(gpu, None))?;
        let cfg = &self.gan.config;
        let labels = crate::models::class_row_labels(cfg.classes, cfg.class_names.as_deref());
        save_grid(&epoch_grid(out, "", epoch), &samples, cfg.image, GRID_COLS, labels.as_deref())?;
        let mut r = Map::new();
        r.insert("d_loss".into(), json!(mean(D_LOSS)));
        r.insert("g_loss".into(), json!(mean(G_LOSS)));
        r.insert("d_real".into(), json!(mean(D_REAL)));
        r.insert("d_fake".into(), json!(mean(D_FAKE)));
        Ok(r)
    }

    fn running(&self, sums: &[f32], steps: usize) -> String {
        let n = steps.max(1) as f32;
        format!("d_loss {:.3} g_loss {:.3} D(x) {:.2} D(G(z)) {:.2}", sums[D_LOSS] / n, sums[G_LOSS] / n, sums[D_REAL] / n, sums[D_FAKE] / n)
    }

    fn losses(&self, sums: &[f32], steps: usize) -> Vec<(&'static str, f64)> {
        let n = steps.max(1) as f64;
        [("d_loss", D_LOSS), ("g_loss", G_LOSS), ("d_real", D_REAL), ("d_fake", D_FAKE)].map(|(k, slot)| (k, f64::from(sums[slot]) / n)).to_vec()
    }

    fn curves(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        vec![("losses", vec!["d_loss", "g_loss"]), ("discriminator outputs", vec!["d_real", "d_fake"])]
    }

    fn model_metadata(&self) -> Result<HashMap<String, String>> {
        metadata("gan", &self.gan.config)
    }

    fn samples(&self, gpu: &Gpu, n: usize) -> Result<Option<Vec<f32>>> {
        Ok(Some(sample_images(gpu, &self.gan, n, &self.sample_step, self.seed, None)?))
    }

    fn asked(&self, n: usize) -> Option<Vec<usize>> {
        self.gan.config.classes.map(|k| cycling_classes(n, k))
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["discriminator loss", "generator loss", "mean D(x)", "mean D(G(z))"]
    }

    fn summary(&self, r: &Map<String, Value>) -> String {
        let f = |k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        format!(
            "d_loss {:.4}  g_loss {:.4}  D(x) {:.3}  D(G(z)) {:.3}  {:>7.0} img/s",
            f("d_loss"),
            f("g_loss"),
            f("d_real"),
            f("d_fake"),
            f("img_per_s")
        )
    }
}
