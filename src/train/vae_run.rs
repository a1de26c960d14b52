use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{grid_classes, epoch_grid, grid_rows, GRID_COLS, metadata, round, save_grid, StepCore, TrainConfig, Trainee};
use crate::eval::EvalParts;
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, Tensor};
use crate::models::vae::{pixel, sample_images, Vae, VaeGraph, VaeSampler, METRIC_SLOTS, TEST_KL, TEST_RECON, TRAIN_KL, TRAIN_RECON};
use crate::models::{ask_classes, cycling_classes, Parameters};
use crate::nn::StepBuffer;

pub struct VaeRun {
    vae: Vae,
    core: StepCore,
    eval: EvalParts<VaeGraph>,
    test_count: usize,
    sampler: VaeSampler,
    sample_step: StepBuffer,
    seed: u64,
    /// Kept alive for the buffers the program binds.
    _graph: VaeGraph,
}

impl VaeRun {
    pub fn new(gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, test: &DeviceSplit) -> Result<VaeRun> {
        let vc = cfg.vae.clone().unwrap_or_default();
        let (_, _, values, state) = Vae::initial(&vc, cfg.seed);
        let vae = Vae::new(gpu, &vc, &values, &state)?;
        let metrics = Tensor::zeros(gpu, "vae.metrics", &[METRIC_SLOTS])?;
        let steps = StepBuffer::new(gpu, "vae.train", cfg.steps_per_submit);
        let graph = VaeGraph::new(gpu, &vae, cfg.batch, "vae.train")?;
        let program = graph.train_program(gpu, &vae, train, &steps.uniform, cfg.seed, &metrics, &cfg.adam);

        let eval = EvalParts::new(gpu, "vae.eval", test.count, |rows, step| {
            let g = VaeGraph::new(gpu, &vae, rows, "vae.eval")?;
            let p = g.eval_program(gpu, &vae, test, step, cfg.seed, &metrics);
            Ok((g, p))
        })?;
        let sample_step = StepBuffer::new(gpu, "vae.sample", 1);
        let sampler = VaeSampler::new(gpu, &vae, grid_rows(vc.classes), &sample_step.uniform, cfg.seed)?;
        let core = StepCore { batch: cfg.batch, steps, program, metrics };
        Ok(VaeRun { vae, core, eval, test_count: test.count, sampler, sample_step, seed: cfg.seed, _graph: graph })
    }

    /// Samples from the run's fixed noise, in [0, 1]: a row of 8 per class when conditioned,
    /// or every one of `class`.
    pub async fn grid(&self, gpu: &Gpu, class: Option<usize>) -> Result<Vec<f32>> {
        if let (Some(labels), Some(k)) = (&self.sampler.labels, self.vae.config.classes) {
            ask_classes(gpu, labels, &grid_classes(k, class));
        }
        self.sampler.program.run(gpu, "vae.sample");
        Ok(self.sampler.decoder.output().read_rows_async(gpu, self.sampler.decoder.rows, pixel).await?)
    }

    /// The first `shown` test images and their reconstructions from the last test pass, in [0, 1].
    pub async fn reconstructions(&self, gpu: &Gpu, shown: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let part = &self.eval.parts[0].0;
        let shown = part.rows.min(shown);
        let originals = part.x.region().read_rows_async(gpu, shown, |v| v).await?;
        let recons = part.decoder.output().read_rows_async(gpu, shown, pixel).await?;
        Ok((originals, recons))
    }

    /// Runs the test split through the model; returns its −ELBO per image in nats.
    pub async fn test_pass(&self, gpu: &Gpu) -> Result<f64> {
        // The test slots are summed into by each pass: clear them, keep the training sums.
        gpu.queue.write_buffer(&self.core.metrics.buffer, (TEST_RECON * 4) as u64, bytemuck::cast_slice(&[0f32; 2]));
        self.eval.submit(gpu);
        let sums = self.core.metrics.read_async(gpu).await?;
        Ok(f64::from(sums[TEST_RECON] + sums[TEST_KL]) / self.test_count as f64)
    }
}

impl Trainee for VaeRun {
    fn core(&self) -> &StepCore {
        &self.core
    }

    fn parameters(&self) -> &Parameters {
        &self.vae.params
    }

    fn before_readback(&mut self, gpu: &Gpu) -> Result<()> {
        self.eval.submit(gpu);
        Ok(())
    }

    fn epoch_record(&mut self, gpu: &Gpu, epoch: u32, sums: &[f32], steps: usize, out: &Path) -> Result<Map<String, Value>> {
        let n = self.test_count as f64;
        let (recon, kl) = (f64::from(sums[TEST_RECON]) / n, f64::from(sums[TEST_KL]) / n);
        let train_loss = f64::from(sums[TRAIN_RECON] + sums[TRAIN_KL]) / steps as f64;
        let samples = pollster::block_on(self.grid(gpu, None))?;
        let cfg = &self.vae.config;
        let labels = crate::models::class_row_labels(cfg.classes, cfg.class_names.as_deref());
        save_grid(&epoch_grid(out, "", epoch), &samples, cfg.image, GRID_COLS, labels.as_deref())?;
        let (originals, recons) = pollster::block_on(self.reconstructions(gpu, 32))?;
        let pairs = crate::image::interleave_rows(&originals, &recons, 8, self.vae.config.image.values());
        save_grid(&epoch_grid(out, "recon-", epoch), &pairs, self.vae.config.image, 8, None)?;
        let mut r = Map::new();
        r.insert("train_loss".into(), json!(round(train_loss, 3)));
        r.insert("test_neg_elbo".into(), json!(round(recon + kl, 3)));
        r.insert("test_recon".into(), json!(round(recon, 3)));
        r.insert("test_kl".into(), json!(round(kl, 3)));
        Ok(r)
    }

    fn running(&self, sums: &[f32], steps: usize) -> String {
        format!("loss {:.2}", f64::from(sums[TRAIN_RECON] + sums[TRAIN_KL]) / steps.max(1) as f64)
    }

    fn losses(&self, sums: &[f32], steps: usize) -> Vec<(&'static str, f64)> {
        let n = steps.max(1) as f64;
        let (recon, kl) = (f64::from(sums[TRAIN_RECON]) / n, f64::from(sums[TRAIN_KL]) / n);
        vec![("loss", recon + kl), ("recon", recon), ("kl", kl)]
    }

    fn curves(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        vec![("loss (nats per image)", vec!["train_loss", "test_neg_elbo"]), ("test ELBO parts", vec!["test_recon", "test_kl"])]
    }

    fn model_metadata(&self) -> Result<HashMap<String, String>> {
        metadata("vae", &self.vae.config)
    }

    fn samples(&self, gpu: &Gpu, n: usize) -> Result<Option<Vec<f32>>> {
        Ok(Some(sample_images(gpu, &self.vae, n, &self.sample_step, self.seed, None)?))
    }

    fn asked(&self, n: usize) -> Option<Vec<usize>> {
        self.vae.config.classes.map(|k| cycling_classes(n, k))
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["training reconstruction loss", "training KL term", "test reconstruction loss", "test KL term"]
    }

    fn summary(&self, r: &Map<String, Value>) -> String {
        format!(
            "train_loss {:>8.3}  test_neg_elbo {:>8.3} (recon {:.3}, kl {:.3})  {:>7.0} img/s",
            r["train_loss"].as_f64().unwrap_or(f64::NAN),
            r["test_neg_elbo"].as_f64().unwrap_or(f64::NAN),
            r["test_recon"].as_f64().unwrap_or(f64::NAN),
            r["test_kl"].as_f64().unwrap_or(f64::NAN),
            r.get("img_per_s").and_then(Value::as_f64).unwrap_or(f64::NAN),
        )
    }
}
