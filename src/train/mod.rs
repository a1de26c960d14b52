//! Training: epochs of many steps per command buffer, metrics read back once per epoch, and the
//! run's outputs (config, metrics, sample grids, weights).

pub mod checkpoint;
mod gan_run;
mod vae_run;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Map, Value};

use crate::data::{self, DeviceSplit};
use crate::gpu::{Gpu, Program, Tensor};
use crate::models::gan::GanConfig;
use crate::models::vae::VaeConfig;
use crate::models::ParamLayout;
use crate::nn::{AdamConfig, Step, StepBuffer};

pub use gan_run::GanRun;
pub use vae_run::VaeRun;

/// Records `steps` consecutive training steps into one command buffer and submits it without
/// waiting. Each step begins with the copy that makes its Step current, then one compute pass.
pub fn submit_steps(gpu: &Gpu, program: &Program, buffer: &StepBuffer, steps: &[Step]) -> wgpu::SubmissionIndex {
    buffer.stage(gpu, steps);
    let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("train steps") });
    for i in 0..steps.len() {
        buffer.select(&mut encoder, i);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("train step"), timestamp_writes: None });
        program.record(&mut pass);
    }
    gpu.queue.submit(Some(encoder.finish()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Vae,
    Gan,
}

/// Every setting of a run, checked; written to `config.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub model: ModelKind,
    pub epochs: u32,
    pub batch: usize,
    pub adam: AdamConfig,
    pub seed: u64,
    /// None: the built-in mnist-10k
    pub data: Option<PathBuf>,
    pub out: PathBuf,
    /// Also write model.safetensors every this many epochs (0: only at the end).
    pub checkpoint_every: u32,
    pub steps_per_submit: usize,
    pub vae: Option<VaeConfig>,
    pub gan: Option<GanConfig>,
}

impl TrainConfig {
    /// The defaults of `model`: the recipes (VAE: Adam 1e-3, batch 128; GAN: Adam 2e-4
    /// with betas (0.5, 0.999), batch 64).
    pub fn defaults(model: ModelKind) -> TrainConfig {
        let vae = model == ModelKind::Vae;
        TrainConfig {
            model,
            epochs: 10,
            batch: if vae { 128 } else { 64 },
            adam: if vae { AdamConfig::new(1e-3, 0.9, 0.999) } else { AdamConfig::new(2e-4, 0.5, 0.999) },
            seed: 0,
            data: None,
            out: PathBuf::from("runs"),
            checkpoint_every: 5,
            steps_per_submit: 32,
            vae: vae.then(VaeConfig::default),
            gan: (!vae).then(GanConfig::default),
        }
    }

    /// `count` consecutive steps from global step `first` (0-based), batches taken in order
    /// through an epoch of `epoch_steps` steps.
    pub fn steps(&self, first: u32, count: usize, epoch_steps: usize) -> Vec<Step> {
        (0..count as u32)
            .map(|i| {
                let t = first + i + 1;
                let (adam_bc1, adam_bc2) = self.adam.bias_corrections(t);
                let batch_start = ((t - 1) as usize % epoch_steps.max(1) * self.batch) as u32;
                Step { t, rng_step: t - 1, batch_start, adam_bc1, adam_bc2, ..Step::default() }
            })
            .collect()
    }
}

/// Either model, built for training.
pub enum ModelRun {
    Vae(VaeRun),
    Gan(GanRun),
}

impl ModelRun {
    pub fn new(gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, test: &DeviceSplit) -> Result<ModelRun> {
        Ok(match cfg.model {
            ModelKind::Vae => ModelRun::Vae(VaeRun::new(gpu, cfg, train, test)?),
            ModelKind::Gan => ModelRun::Gan(GanRun::new(gpu, cfg, train)?),
        })
    }

    pub fn program(&self) -> &Program {
        match self {
            ModelRun::Vae(r) => r.program(),
            ModelRun::Gan(r) => r.program(),
        }
    }

    pub fn steps(&self) -> &StepBuffer {
        match self {
            ModelRun::Vae(r) => r.steps(),
            ModelRun::Gan(r) => r.steps(),
        }
    }
}

/// A model being trained: its step program and what happens around epochs.
pub trait Trainee {
    fn batch(&self) -> usize;
    fn program(&self) -> &Program;
    /// The step buffer the program was built on.
    fn steps(&self) -> &StepBuffer;
    fn metrics(&self) -> &Tensor;
    /// Work after an epoch's steps are submitted and before its metrics are read (evaluation).
    fn before_readback(&mut self, gpu: &Gpu) -> Result<()>;
    /// The epoch's record for metrics.jsonl from the metric sums; also writes sample grids.
    fn epoch_record(&mut self, gpu: &Gpu, epoch: u32, sums: &[f32], steps: usize, out: &Path) -> Result<Map<String, Value>>;
    /// Parameter layouts and values for the checkpoint, with its metadata.
    fn export(&self, gpu: &Gpu) -> Result<(ParamLayout, Vec<f32>, ParamLayout, Vec<f32>, HashMap<String, String>)>;
    /// One line for the terminal.
    fn summary(record: &Map<String, Value>) -> String
    where
        Self: Sized;
}

/// What a finished run reports.
pub struct RunSummary {
    pub out: PathBuf,
    pub records: Vec<Map<String, Value>>,
}

pub fn train(gpu: &Gpu, cfg: &TrainConfig) -> Result<RunSummary> {
    let dataset = data::load(cfg.data.as_deref())?;
    if cfg.batch > dataset.train.count {
        bail!("--batch {} is larger than the {} training images of {}", cfg.batch, dataset.train.count, dataset.source);
    }
    let train = DeviceSplit::upload(gpu, "train", &dataset.train)?;
    let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
    std::fs::create_dir_all(cfg.out.join("samples")).with_context(|| format!("cannot create {} (is it writable?)", cfg.out.display()))?;
    let config = json!({
        "config": cfg,
        "adapter": gpu.adapter_name(),
        "wgen_version": env!("CARGO_PKG_VERSION"),
        "data_source": dataset.source,
        "train_images": dataset.train.count,
        "test_images": dataset.test.count,
    });
    checkpoint::write_atomically(&cfg.out.join("config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    match cfg.model {
        ModelKind::Vae => run(gpu, cfg, &train, VaeRun::new(gpu, cfg, &train, &test)?),
        ModelKind::Gan => run(gpu, cfg, &train, GanRun::new(gpu, cfg, &train)?),
    }
}

fn run<T: Trainee>(gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, mut trainee: T) -> Result<RunSummary> {
    let batch = trainee.batch();
    let steps_per_epoch = train.count / batch;
    let metrics_path = cfg.out.join("metrics.jsonl");
    let mut metrics_file = std::fs::File::create(&metrics_path).with_context(|| format!("cannot write {}", metrics_path.display()))?;
    let slots = trainee.metrics().len();
    let mut records = Vec::new();
    let mut global = 0u32;
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        train.set_order(gpu, &epoch_order(train.count, cfg.seed, epoch));
        trainee.metrics().write(gpu, &vec![0.0; slots]);
        let mut first = 0;
        while first < steps_per_epoch {
            let n = cfg.steps_per_submit.min(steps_per_epoch - first);
            submit_steps(gpu, trainee.program(), trainee.steps(), &cfg.steps(global, n, steps_per_epoch));
            global += n as u32;
            first += n;
        }
        gpu.wait();
        let train_seconds = start.elapsed().as_secs_f64();
        trainee.before_readback(gpu)?;
        let sums = trainee.metrics().read(gpu)?;
        if let Some(i) = sums.iter().position(|v| !v.is_finite()) {
            bail!(
                "training diverged in epoch {epoch} (steps {}..{}): metric {i} is {}; the last good checkpoint is kept in {}. Try a lower --lr",
                global - steps_per_epoch as u32 + 1,
                global,
                sums[i],
                cfg.out.display()
            );
        }
        let mut record = Map::new();
        record.insert("epoch".into(), json!(epoch));
        record.extend(trainee.epoch_record(gpu, epoch, &sums, steps_per_epoch, &cfg.out)?);
        record.insert("img_per_s".into(), json!(round((steps_per_epoch * batch) as f64 / train_seconds, 1)));
        record.insert("seconds".into(), json!(round(start.elapsed().as_secs_f64(), 2)));
        writeln!(metrics_file, "{}", Value::Object(record.clone()))?;
        metrics_file.flush()?;
        println!("epoch {epoch:>3}/{}  {}", cfg.epochs, T::summary(&record));
        if epoch == cfg.epochs || (cfg.checkpoint_every > 0 && epoch % cfg.checkpoint_every == 0) {
            let (layout, values, state_layout, state, meta) = trainee.export(gpu)?;
            checkpoint::write_safetensors(&cfg.out.join("model.safetensors"), &layout, &values, &state_layout, &state, meta)?;
        }
        records.push(record);
    }
    Ok(RunSummary { out: cfg.out.clone(), records })
}

/// The epoch's shuffle: a pure function of (seed, epoch), so runs repeat exactly.
pub fn epoch_order(count: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..count as u32).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}

pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

/// Reads `rows` rows of `width` values from a region and maps them through `f` for a grid.
pub fn read_rows(gpu: &Gpu, region: &crate::gpu::Region, rows: usize, f: impl Fn(f32) -> f32) -> Result<Vec<f32>> {
    Ok(gpu.read::<f32>(&region.buffer, region.offset as u64, rows * region.cols)?.into_iter().map(f).collect())
}

pub fn save_grid(path: &Path, images: &[f32], cols: usize) -> Result<()> {
    let (pixels, w, h) = crate::image::grid(images, 28, cols, 2, 1);
    crate::image::write_png(path, &pixels, w, h)
}

pub(crate) fn metadata(model: &str, config: &impl serde::Serialize) -> Result<HashMap<String, String>> {
    Ok(HashMap::from([
        ("model".to_string(), model.to_string()),
        ("config".to_string(), serde_json::to_string(config)?),
        ("wgen_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("layout".to_string(), "pytorch: Linear weight [out, in], bias [out]; BatchNorm1d weight, bias, running_mean, running_var".to_string()),
    ]))
}
