//! Training: epochs of many steps per command buffer, metrics read back once per epoch, and the
//! run's outputs (config, metrics, sample grids, weights).

mod best;
pub mod checkpoint;
mod checks;
mod classifier_run;
pub mod config;
#[cfg(not(target_arch = "wasm32"))] // plotters' file backend and system fonts; the page draws its own
mod curves;
mod epochs;
#[cfg(not(target_arch = "wasm32"))] // the page keeps its run in memory
pub mod events;
mod fit;
mod gan_run;
pub mod judge;
pub mod live;
mod tune;
mod upload;
mod vae_run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Map, Value};

use crate::data::{self, DeviceSplit};
use crate::gpu::{Gpu, Program, Tensor};
use crate::models::Parameters;
use crate::nn::{submit_steps, StepBuffer};

use epochs::run_epochs;
pub use fit::{fit_to_data, shape_to};

pub use best::BEST_FILE;
pub use classifier_run::ClassifierRun;
pub use config::{ConfigError, Given, ModelKind, Schedule, Settings, TrainConfig, CVAE_LATENT};
pub use gan_run::GanRun;
pub use judge::Judge;
pub use live::Live;
pub use tune::{remember_conv, settle_conv, settle_matmul, MatmulSource};
pub use upload::{batch_rows, upload_test, upload_training};
pub use vae_run::VaeRun;

/// "1 epoch", "5 epochs".
pub fn plural(n: impl Into<u64>, what: &str) -> String {
    let n = n.into();
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Any model, built for training; one exists per process, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum ModelRun {
    Vae(VaeRun),
    Gan(GanRun),
    Classifier(ClassifierRun),
}

impl ModelRun {
    pub fn new(gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, test: &DeviceSplit) -> Result<ModelRun> {
        Ok(match cfg.model {
            ModelKind::Vae | ModelKind::ConvVae => ModelRun::Vae(VaeRun::new(gpu, cfg, train, test)?),
            ModelKind::Gan | ModelKind::Dcgan => ModelRun::Gan(GanRun::new(gpu, cfg, train)?),
            ModelKind::Classifier => ModelRun::Classifier(ClassifierRun::new(gpu, cfg, train, test)?),
        })
    }

    pub fn trainee(&self) -> &dyn Trainee {
        match self {
            ModelRun::Vae(r) => r,
            ModelRun::Gan(r) => r,
            ModelRun::Classifier(r) => r,
        }
    }

    pub fn parameters(&self) -> &Parameters {
        self.trainee().parameters()
    }

    pub fn program(&self) -> &Program {
        self.trainee().program()
    }

    pub fn steps(&self) -> &StepBuffer {
        self.trainee().steps()
    }
}

/// What every training run has: its batch size, its step program, the step buffer the program
/// was built on and the metrics it accumulates into.
pub struct StepCore {
    pub batch: usize,
    pub steps: StepBuffer,
    pub program: Program,
    pub metrics: Tensor,
}

/// A model being trained: its step program and what happens around epochs.
pub trait Trainee {
    fn core(&self) -> &StepCore;
    fn batch(&self) -> usize {
        self.core().batch
    }
    fn program(&self) -> &Program {
        &self.core().program
    }
    fn steps(&self) -> &StepBuffer {
        &self.core().steps
    }
    fn metrics(&self) -> &Tensor {
        &self.core().metrics
    }
    fn parameters(&self) -> &Parameters;
    /// Work after an epoch's steps are submitted and before its metrics are read (evaluation).
    fn before_readback(&mut self, gpu: &Gpu) -> Result<()>;
    /// The epoch's record for metrics.jsonl from the metric sums; also writes sample grids.
    fn epoch_record(&mut self, gpu: &Gpu, epoch: u32, sums: &[f32], steps: usize, out: &Path) -> Result<Map<String, Value>>;
    /// The running training losses from partial sums, for the progress bar.
    fn running(&self, sums: &[f32], steps: usize) -> String;
    /// The training metrics as (key, mean per step) from the sums of `steps` steps: what the
    /// browser plots.
    fn losses(&self, sums: &[f32], steps: usize) -> Vec<(&'static str, f64)>;
    /// One line for the terminal.
    fn summary(&self, record: &Map<String, Value>) -> String;
    /// What each metric slot holds, for messages.
    fn metric_names(&self) -> &'static [&'static str];
    /// Which metrics curves.png plots, in panels of (title, keys).
    fn curves(&self) -> Vec<(&'static str, Vec<&'static str>)>;
    /// The model's kind and configuration for the checkpoint's metadata.
    fn model_metadata(&self) -> Result<HashMap<String, String>>;
    /// `n` images in [0, 1] from fixed noise, for scoring; None for models that make none.
    fn samples(&self, _gpu: &Gpu, _n: usize) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }
    /// Conditional models: the class each of `samples(n)`'s images asked for.
    fn asked(&self, _n: usize) -> Option<Vec<usize>> {
        None
    }
}

/// Samples scored by a classifier every few epochs.
struct SampleEval {
    features: crate::eval::Features,
    reference: Vec<f64>,
    every: u32,
    samples: usize,
}

/// How many samples `--eval-every` scores unless `--eval-samples` says.
pub const EVAL_SAMPLES: usize = 5000;

/// Epochs between scorings when a classifier is at hand and `--eval-every` is not given.
pub const EVAL_EVERY: u32 = 5;

/// What a finished run reports.
pub struct RunSummary {
    pub out: PathBuf,
    pub records: Vec<Map<String, Value>>,
}

/// What the trainer tells its user, and how the user stops it.
pub trait Monitor {
    fn epoch_start(&mut self, _epoch: u32, _epochs: u32, _steps: usize, _done: usize) {}
    /// Progress within the epoch; `running` is the losses so far (read at most a few times a
    /// second, and only when `wants_running`).
    fn tick(&mut self, _done: usize, _running: Option<&str>, _img_per_s: f64) {}
    fn wants_running(&self) -> bool {
        false
    }
    fn epoch_end(&mut self, _line: &str) {}
    /// A line for the user outside any epoch.
    fn say(&mut self, _line: &str) {}
    /// Images of a folder decoded so far (the first run on it; later runs read the cache).
    fn decoding(&mut self, _done: usize, _total: usize) {}
    /// Checked after every submit: true stops training at that step with a checkpoint.
    fn interrupted(&mut self, _global_step: u32) -> bool {
        false
    }
}

/// A monitor that says nothing and never interrupts.
pub struct Silent;
impl Monitor for Silent {}

/// Training stopped on request, with a checkpoint to resume from.
#[derive(Debug, thiserror::Error)]
#[error("interrupted in epoch {epoch} after step {step}; checkpoint written. Resume with: wgen train --resume {}", out.display())]
pub struct Interrupted {
    pub epoch: u32,
    pub step: u32,
    pub out: PathBuf,
}

/// Where a run is: the start of `epoch`'s step `step_in_epoch`, `global` steps done. The epoch
/// loop and the page's `Live` both move through a run with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub epoch: u32,
    pub step_in_epoch: usize,
    pub global: u32,
}

impl Position {
    /// Starts `epoch` here: its shuffle, and the metric sums its steps accumulate onto (a
    /// resumed epoch's, else zeros).
    fn start_epoch(&self, gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, trainee: &dyn Trainee, sums: Option<Vec<f32>>) {
        train.set_order(gpu, &epoch_order(train.count, cfg.seed, self.epoch));
        let metrics = trainee.metrics();
        metrics.write(gpu, &sums.unwrap_or_else(|| vec![0.0; metrics.len()]));
    }

    /// Submits up to `n` steps in one command buffer, at most `steps_per_submit` and never past
    /// the epoch's end, and moves past them; returns how many.
    fn submit(&mut self, gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, trainee: &dyn Trainee, n: usize, steps_per_epoch: usize) -> usize {
        let n = n.min(cfg.steps_per_submit).min(steps_per_epoch - self.step_in_epoch);
        let steps = cfg.steps(self.global, n, steps_per_epoch);
        train.feed(gpu, &batch_rows(&steps, cfg.batch));
        train.submitted(submit_steps(gpu, trainee.program(), trainee.steps(), &steps));
        self.global += n as u32;
        self.step_in_epoch += n;
        n
    }
}

pub fn train(gpu: &Gpu, cfg: &TrainConfig, monitor: &mut dyn Monitor) -> Result<RunSummary> {
    if cfg.out.join("config.json").exists() {
        bail!(
            "{0} already holds a run; choose another --out, or continue it with `wgen train --resume {0}`",
            cfg.out.display()
        );
    }
    start(gpu, cfg, None, monitor)
}

/// The model a run folder trains, from its config.json.
pub fn run_model(dir: &Path) -> Result<ModelKind> {
    Ok(run_config(dir)?.model)
}

fn run_config(dir: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(dir.join("config.json")).with_context(|| format!("{} holds no run to resume (no config.json)", dir.display()))?;
    let saved: Value = serde_json::from_str(&text).with_context(|| format!("{}/config.json is unreadable", dir.display()))?;
    serde_json::from_value(saved["config"].clone()).with_context(|| format!("{}/config.json is unreadable", dir.display()))
}

/// Continues the run in `dir` from its checkpoint, for `epochs` epochs in all (None: as planned).
pub fn resume(gpu: &Gpu, dir: &Path, epochs: Option<u32>, monitor: &mut dyn Monitor) -> Result<RunSummary> {
    let mut cfg = run_config(dir)?;
    cfg.out = dir.to_path_buf();
    if let Some(e) = epochs {
        cfg.epochs = e;
    }
    let ckpt = checkpoint::Checkpoint::read(&dir.join("checkpoint.safetensors"))?;
    start(gpu, &cfg, Some(ckpt), monitor)
}

fn start(gpu: &Gpu, cfg: &TrainConfig, ckpt: Option<checkpoint::Checkpoint>, monitor: &mut dyn Monitor) -> Result<RunSummary> {
    let mut dataset = data::load(cfg.data.as_deref(), &cfg.images, &mut |done, total| monitor.decoding(done, total))?;
    report_skipped(&dataset, monitor);
    let mut cfg = cfg.clone();
    // The model trains on --limit's share of the training images; the judge reads them all.
    let whole = cfg.limit.map(|n| fit::limit_training(&mut dataset, n, monitor));
    for note in fit_to_data(&mut cfg, &dataset, ckpt.is_some())? {
        monitor.say(&note);
    }
    let (judge, judging) = match whole {
        None => settle_judge(gpu, &mut cfg, &dataset, monitor)?,
        Some(whole) => {
            let limited = std::mem::replace(&mut dataset.train, whole);
            let settled = settle_judge(gpu, &mut cfg, &dataset, monitor);
            dataset.train = limited;
            settled?
        }
    };
    let verb = if ckpt.is_some() { "resuming" } else { "training" };
    let classes = cfg.vae.as_ref().and_then(|v| v.classes).or(cfg.gan.as_ref().and_then(|g| g.classes));
    monitor.say(&format!(
        "{verb} {}{}{} on {} for {}, batch {}, into {}",
        cfg.model.name(),
        classes.map_or(String::new(), |k| format!(" conditioned on {k} classes")),
        if cfg.gan.as_ref().is_some_and(|g| g.projection) { " through a projection discriminator" } else { "" },
        gpu.adapter_name(),
        plural(cfg.epochs, "epoch"),
        cfg.batch,
        cfg.out.display()
    ));
    if let Some(line) = judging {
        monitor.say(&line);
    }
    let sample_eval = match judge {
        Some(judge) => {
            let features = judge.load_for(gpu, &dataset)?;
            let (reference, _) = features.of(gpu, &dataset.test.unit_floats())?;
            Some(SampleEval { features, reference, every: cfg.eval_every.unwrap_or(0), samples: cfg.eval_samples })
        }
        None => None,
    };
    let test = upload_test(gpu, &dataset)?;
    let (source, train_images, train_bytes) = (dataset.source, dataset.train.count, dataset.train.images.len());
    let train = upload_training(gpu, &cfg, dataset.train)?;
    if let Some(note) = upload::streaming_note(&cfg, &train, train_bytes) {
        monitor.say(&note);
    }
    std::fs::create_dir_all(cfg.out.join("samples")).with_context(|| format!("cannot create {} (is it writable?)", cfg.out.display()))?;
    // After the model is built: its conv layers' plans are settled then (`ConvPlan::chosen`).
    let model = ModelRun::new(gpu, &cfg, &train, &test)?;
    let config = json!({
        "config": cfg,
        "adapter": gpu.adapter_name(),
        "matmul": gpu.matmul,
        "conv": crate::nn::ConvPath::on(gpu),
        "conv_plans": gpu.conv_tuning.lock().unwrap_or_else(|e| e.into_inner()).used_plans(),
        "wgen_version": env!("CARGO_PKG_VERSION"),
        "data_source": source,
        "train_images": train_images,
        "test_images": test.count,
    });
    checkpoint::write_atomically(&cfg.out.join("config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    let cfg = &cfg;
    let summary = match model {
        ModelRun::Vae(run) => run_epochs(gpu, cfg, &train, run, ckpt, sample_eval, monitor),
        ModelRun::Gan(run) => run_epochs(gpu, cfg, &train, run, ckpt, sample_eval, monitor),
        ModelRun::Classifier(run) => run_epochs(gpu, cfg, &train, run, ckpt, sample_eval, monitor),
    }?;
    if let Some(line) = summary.records.last().and_then(|r| judge::in_context(cfg, r)) {
        monitor.say(&line);
    }
    Ok(summary)
}

/// The classifier that scores the run's samples (found, or trained once where asked), with
/// `eval_every`, `keep_best` and `classifier_path` settled by it; and a line on how samples are
/// scored, or why not.
fn settle_judge(gpu: &Gpu, cfg: &mut TrainConfig, dataset: &data::Dataset, monitor: &mut dyn Monitor) -> Result<(Option<Judge>, Option<String>)> {
    let eval_asked = cfg.eval_every;
    let judge = match cfg.eval_every {
        Some(0) => None,
        Some(_) => Some(judge::find_or_train(gpu, cfg.classifier_path.as_deref(), cfg.data.as_deref(), &cfg.images, dataset, monitor)?),
        None => judge::find(cfg.classifier_path.as_deref(), dataset)?,
    };
    cfg.eval_every = Some(judge.as_ref().map_or(0, |_| cfg.eval_every.unwrap_or(EVAL_EVERY)));
    if cfg.keep_best == Some(true) && judge.is_none() {
        bail!("--keep-best picks the epoch by the FD of its samples, and {} has no classifier yet: add --eval-every 5 (one is trained once)", dataset.source);
    }
    cfg.keep_best = Some(cfg.keep_best.unwrap_or(cfg.model.is_gan()) && judge.is_some());
    cfg.classifier_path = judge.as_ref().and_then(Judge::path).map(Path::to_path_buf);
    let line = if let Some(judge) = &judge {
        let kept = if cfg.keep_best == Some(true) { "; the lowest FD's model kept as model-best.safetensors" } else { "" };
        Some(format!("scoring {} every {} with {judge}{kept}", plural(cfg.eval_samples as u64, "sample"), plural(cfg.eval_every.unwrap_or(0), "epoch")))
    } else if let Some(why) = judge::unjudged(dataset) {
        Some(why)
    } else {
        eval_asked.is_none().then(|| format!("{} has no classifier yet, so samples are not scored: --eval-every 5 trains one once (15 epochs) and scores them", dataset.source))
    };
    Ok((judge, line))
}

/// Names each image that could not be read, then how many, and each class left untested.
pub fn report_skipped(dataset: &data::Dataset, monitor: &mut dyn Monitor) {
    dataset.untested_classes().iter().for_each(|line| monitor.say(line));
    for line in &dataset.skipped {
        monitor.say(&format!("skipped {line}"));
    }
    if !dataset.skipped.is_empty() {
        let n = dataset.skipped.len();
        monitor.say(&format!("{n} unreadable image{} left out of {}", if n == 1 { "" } else { "s" }, dataset.source));
    }
}

pub use crate::data::cache_dir;

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

/// Columns of a run's per-epoch sample grid.
pub const GRID_COLS: usize = 8;

/// Rows sampled for a per-epoch grid: 8×8, or a row of 8 per class when conditioned.
pub fn grid_rows(classes: Option<usize>) -> usize {
    classes.map_or(GRID_COLS * GRID_COLS, |k| k * GRID_COLS)
}

/// `per_row` samples of class 0, then of class 1, …: one grid row per class.
pub fn class_rows(k: usize, per_row: usize) -> Vec<usize> {
    (0..k * per_row).map(|i| i / per_row).collect()
}

/// The classes a conditional run's grid asks for: a row per class, or all of them `class`.
pub fn grid_classes(k: usize, class: Option<usize>) -> Vec<usize> {
    class.map_or_else(|| class_rows(k, GRID_COLS), |c| vec![c; k * GRID_COLS])
}

/// An epoch's grid in the run folder: `samples/epoch-005.png`, or with `kind` "recon-" the VAE's
/// reconstructions; the per-epoch writers and TensorBoard's images both name it so.
pub fn epoch_grid(out: &Path, kind: &str, epoch: u32) -> PathBuf {
    out.join(format!("samples/{kind}epoch-{epoch:03}.png"))
}

/// A grid at twice the images' size: readable on its own, and a run's epochs still tile into
/// one `--progression` picture of a sensible size. A conditional run's grid (a row per class,
/// `grid_classes`) names its rows with `labels` (`models::class_row_labels`).
pub fn save_grid(path: &Path, images: &[f32], shape: data::ImageShape, cols: usize, labels: Option<&[String]>) -> Result<()> {
    crate::image::write_png(path, &crate::image::labelled_grid(images, shape, cols, 2, 2, labels))
}

/// The metadata naming a model in its checkpoints.
pub fn metadata(model: &str, config: &impl serde::Serialize) -> Result<HashMap<String, String>> {
    Ok(HashMap::from([
        ("model".to_string(), model.to_string()),
        ("config".to_string(), serde_json::to_string(config)?),
        ("wgen_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("layout".to_string(), "pytorch: Linear weight [out, in], bias [out]; Conv2d weight [out, in, kh, kw]; ConvTranspose2d weight [in, out, kh, kw]; BatchNorm1d weight, bias, running_mean, running_var".to_string()),
    ]))
}
