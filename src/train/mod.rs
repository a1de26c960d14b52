//! Training: epochs of many steps per command buffer, metrics read back once per epoch, and the
//! run's outputs (config, metrics, sample grids, weights).

pub mod checkpoint;
mod classifier_run;
// Drawn with plotters' file backend and system fonts; the browser draws its own curves.
#[cfg(not(target_arch = "wasm32"))]
mod curves;
mod gan_run;
pub mod judge;
pub mod live;
mod tune;
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
use crate::models::classifier::ClassifierConfig;
use crate::models::gan::GanConfig;
use crate::models::vae::{VaeArch, VaeConfig};
use crate::models::Parameters;
use crate::nn::{submit_steps, AdamConfig, Step, StepBuffer};

pub use classifier_run::ClassifierRun;
pub use gan_run::GanRun;
pub use judge::Judge;
pub use live::Live;
pub use tune::{settle_matmul, MatmulSource};
pub use vae_run::VaeRun;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Vae,
    /// The VAE with convolutional encoder and decoder.
    #[serde(rename = "conv-vae")]
    ConvVae,
    Gan,
    /// The GAN with convolutional generator and discriminator (DCGAN).
    Dcgan,
    /// The digit classifier that `wgen eval` measures samples with.
    Classifier,
}

/// How the learning rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The configured rate throughout.
    #[default]
    Constant,
    /// From the configured rate at the first step down towards 0 at the last, in a straight
    /// line (torch's LambdaLR with 1 − step/steps): the classifier ends on small steps, so its
    /// last epoch's weights are not one noisy draw among many.
    Linear,
}

impl Schedule {
    /// The factor at 1-based step `t` of `total`.
    pub fn factor(self, t: u32, total: u64) -> f32 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::Linear => (1.0 - f64::from(t - 1) / total.max(1) as f64).max(0.0) as f32,
        }
    }
}

impl ModelKind {
    /// The name the user types (`wgen train vae`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Vae => "vae",
            ModelKind::ConvVae => "conv-vae",
            ModelKind::Gan => "gan",
            ModelKind::Dcgan => "dcgan",
            ModelKind::Classifier => "classifier",
        }
    }

    /// Trained by the VAE's loop.
    pub fn is_vae(self) -> bool {
        matches!(self, ModelKind::Vae | ModelKind::ConvVae)
    }

    /// Trained by the GAN's loop.
    pub fn is_gan(self) -> bool {
        matches!(self, ModelKind::Gan | ModelKind::Dcgan)
    }
}

/// "1 epoch", "5 epochs".
pub fn plural(n: impl Into<u64>, what: &str) -> String {
    let n = n.into();
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Every setting of a run, checked; written to `config.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub model: ModelKind,
    pub epochs: u32,
    pub batch: usize,
    pub adam: AdamConfig,
    /// Every Adam's rate follows it (runs from before it: constant).
    #[serde(default)]
    pub lr_schedule: Schedule,
    pub seed: u64,
    /// None: the built-in mnist-10k
    pub data: Option<PathBuf>,
    pub out: PathBuf,
    /// Also write model.safetensors every this many epochs (0: only at the end).
    pub checkpoint_every: u32,
    /// Score 5,000 samples with a classifier every this many epochs (0: never; None: every
    /// `EVAL_EVERY` when a classifier is at hand, decided when the data are read).
    #[serde(default)]
    pub eval_every: Option<u32>,
    /// The classifier's model.safetensors for `eval_every` (None: the one `judge::find` picks).
    #[serde(default)]
    pub classifier_path: Option<PathBuf>,
    pub steps_per_submit: usize,
    /// Condition the model on the data's labels; the class count is set from the data when
    /// training starts (`VaeConfig::classes`, `GanConfig::classes`).
    #[serde(default)]
    pub conditional: bool,
    pub vae: Option<VaeConfig>,
    pub gan: Option<GanConfig>,
    #[serde(default)]
    pub classifier: Option<ClassifierConfig>,
}

impl TrainConfig {
    /// The defaults of `model`: the recipes (VAE: Adam 1e-3, batch 128; GAN: Adam 2e-4
    /// with betas (0.5, 0.999), batch 64), but for the DCGAN's G at 4e-4 (`GanConfig::dcgan`
    /// says why).
    pub fn defaults(model: ModelKind) -> TrainConfig {
        let vae = model.is_vae();
        let gan = model.is_gan();
        let gan_lr = if model == ModelKind::Dcgan { 4e-4 } else { 2e-4 };
        TrainConfig {
            model,
            epochs: 10,
            batch: if gan { 64 } else { 128 },
            adam: if gan { AdamConfig::new(gan_lr, 0.5, 0.999) } else { AdamConfig::new(1e-3, 0.9, 0.999) },
            lr_schedule: if model == ModelKind::Classifier { Schedule::Linear } else { Schedule::Constant },
            seed: 0,
            data: None,
            out: PathBuf::from("runs"),
            checkpoint_every: 5,
            eval_every: (model == ModelKind::Classifier).then_some(0),
            classifier_path: None,
            steps_per_submit: 32,
            conditional: false,
            vae: vae.then(|| VaeConfig { arch: if model == ModelKind::ConvVae { VaeArch::Conv } else { VaeArch::Mlp }, ..VaeConfig::default() }),
            gan: gan.then(|| if model == ModelKind::Dcgan { GanConfig::dcgan() } else { GanConfig::mlp() }),
            classifier: (model == ModelKind::Classifier).then(ClassifierConfig::default),
        }
    }

    /// The defaults of a model conditioned on the labels, as `wgen train MODEL --conditional`
    /// gives them: the CVAE's small latent, the GAN's projection discriminator. The class
    /// count is set when the data are read.
    pub fn conditioned(mut self) -> TrainConfig {
        self.conditional = true;
        if let Some(v) = self.vae.as_mut() {
            v.latent = CVAE_LATENT;
        }
        if let Some(g) = self.gan.as_mut() {
            g.projection = self.model == ModelKind::Gan;
        }
        self
    }

    /// `count` consecutive steps from global step `first` (0-based), batches taken in order
    /// through an epoch of `epoch_steps` steps.
    pub fn steps(&self, first: u32, count: usize, epoch_steps: usize) -> Vec<Step> {
        (0..count as u32)
            .map(|i| {
                let t = first + i + 1;
                let (adam_bc1, adam_bc2) = self.adam.bias_corrections(t);
                let batch_start = ((t - 1) as usize % epoch_steps.max(1) * self.batch) as u32;
                let lr_scale = self.lr_schedule.factor(t, u64::from(self.epochs) * epoch_steps as u64);
                Step { t, rng_step: t - 1, batch_start, adam_bc1, adam_bc2, lr_scale, ..Step::default() }
            })
            .collect()
    }
}

/// The conditional VAE's default latent size: samples are the asked-for class ≥ 90% of the time.
pub const CVAE_LATENT: usize = 2;

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
}

/// How many samples `--eval-every` scores.
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

/// Where a resumed run picks up: the start of `epoch`'s step `step_in_epoch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub epoch: u32,
    pub step_in_epoch: usize,
    pub global: u32,
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
    let dataset = data::load(cfg.data.as_deref())?;
    check_batch(cfg, &dataset)?;
    let mut cfg = cfg.clone();
    if cfg.conditional {
        condition_on(&mut cfg, &dataset)?;
    }
    let judge = match cfg.eval_every {
        Some(0) => None,
        Some(_) => Some(judge::find_or_train(gpu, cfg.classifier_path.as_deref(), cfg.data.as_deref(), &dataset, monitor)?),
        None => judge::find(cfg.classifier_path.as_deref(), &dataset)?,
    };
    cfg.eval_every = Some(judge.as_ref().map_or(0, |_| cfg.eval_every.unwrap_or(EVAL_EVERY)));
    cfg.classifier_path = judge.as_ref().and_then(Judge::path).map(Path::to_path_buf);
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
    if let Some(judge) = &judge {
        monitor.say(&format!("scoring 5,000 samples every {} with {judge}", plural(cfg.eval_every.unwrap_or(0), "epoch")));
    }
    let train = DeviceSplit::upload(gpu, "train", &dataset.train)?;
    let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
    std::fs::create_dir_all(cfg.out.join("samples")).with_context(|| format!("cannot create {} (is it writable?)", cfg.out.display()))?;
    let config = json!({
        "config": cfg,
        "adapter": gpu.adapter_name(),
        "matmul": gpu.matmul,
        "wgen_version": env!("CARGO_PKG_VERSION"),
        "data_source": dataset.source,
        "train_images": dataset.train.count,
        "test_images": dataset.test.count,
    });
    checkpoint::write_atomically(&cfg.out.join("config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    let sample_eval = match judge {
        Some(judge) => {
            let features = judge.load(gpu)?;
            let images: Vec<f32> = dataset.test.images.iter().map(|&b| f32::from(b) / 255.0).collect();
            let (reference, _) = features.of(gpu, &images)?;
            Some(SampleEval { features, reference, every: cfg.eval_every.unwrap_or(0) })
        }
        None => None,
    };
    let cfg = &cfg;
    match ModelRun::new(gpu, cfg, &train, &test)? {
        ModelRun::Vae(run) => run_epochs(gpu, cfg, &train, run, ckpt, sample_eval, monitor),
        ModelRun::Gan(run) => run_epochs(gpu, cfg, &train, run, ckpt, sample_eval, monitor),
        ModelRun::Classifier(run) => run_epochs(gpu, cfg, &train, run, ckpt, sample_eval, monitor),
    }
}

fn check_batch(cfg: &TrainConfig, dataset: &data::Dataset) -> Result<()> {
    if cfg.batch > dataset.train.count {
        bail!("--batch {} is larger than the {} training images of {}", cfg.batch, dataset.train.count, dataset.source);
    }
    Ok(())
}

/// Sets the model's class count from the data (a new run), or checks that the data's labels
/// are among the classes the run was trained on (a resumed one).
fn condition_on(cfg: &mut TrainConfig, dataset: &data::Dataset) -> Result<()> {
    let classes = match (&mut cfg.vae, &mut cfg.gan) {
        (Some(v), _) => &mut v.classes,
        (_, Some(g)) => &mut g.classes,
        _ => bail!("--conditional is for vae and gan"),
    };
    let k = *classes.get_or_insert(dataset.train.classes());
    for (name, split) in [("training", &dataset.train), ("test", &dataset.test)] {
        if let Some(&label) = split.labels.iter().find(|&&l| usize::from(l) >= k) {
            bail!(
                "{} has a {name} label {label}, but this conditional model knows classes 0–{}: the training split's labels decide the classes",
                dataset.source,
                k - 1
            );
        }
    }
    Ok(())
}

fn run_epochs<T: Trainee>(
    gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, mut trainee: T, ckpt: Option<checkpoint::Checkpoint>, sample_eval: Option<SampleEval>,
    monitor: &mut dyn Monitor,
) -> Result<RunSummary> {
    let batch = trainee.batch();
    let steps_per_epoch = train.count / batch;
    let metrics_path = cfg.out.join("metrics.jsonl");
    let mut records: Vec<Map<String, Value>> = Vec::new();
    let mut at = Position { epoch: 1, step_in_epoch: 0, global: 0 };
    let mut resumed_sums = None;
    if let Some(ckpt) = &ckpt {
        let (position, sums) = checkpoint::restore(gpu, ckpt, trainee.parameters(), &trainee.model_metadata()?)?;
        at = position;
        resumed_sums = Some(sums);
        // Records of epochs the checkpoint had not finished are dropped: they will be redone.
        let text = std::fs::read_to_string(&metrics_path).unwrap_or_default();
        records = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
            .filter(|r| r.get("epoch").and_then(Value::as_u64).is_some_and(|e| e < u64::from(at.epoch)))
            .collect();
    }
    let mut metrics_file = std::fs::File::create(&metrics_path).with_context(|| format!("cannot write {}", metrics_path.display()))?;
    for r in &records {
        writeln!(metrics_file, "{}", Value::Object(r.clone()))?;
    }
    let slots = trainee.metrics().len();
    let mut panels = trainee.curves();
    if sample_eval.is_some() {
        panels.push(("FD to the test split", vec!["fd"]));
        if trainee.asked(1).is_some() {
            panels.push(("samples of the asked-for class", vec!["class_agreement"]));
        }
    }
    for epoch in at.epoch..=cfg.epochs {
        let start = Instant::now();
        train.set_order(gpu, &epoch_order(train.count, cfg.seed, epoch));
        let first_step = if epoch == at.epoch { at.step_in_epoch } else { 0 };
        trainee.metrics().write(gpu, &resumed_sums.take().unwrap_or_else(|| vec![0.0; slots]));
        monitor.epoch_start(epoch, cfg.epochs, steps_per_epoch, first_step);
        let mut first = first_step;
        let mut last_tick = Instant::now();
        while first < steps_per_epoch {
            let n = cfg.steps_per_submit.min(steps_per_epoch - first);
            submit_steps(gpu, trainee.program(), trainee.steps(), &cfg.steps(at.global, n, steps_per_epoch));
            at.global += n as u32;
            first += n;
            let img_per_s = ((first - first_step) * batch) as f64 / start.elapsed().as_secs_f64();
            if monitor.interrupted(at.global) {
                gpu.wait();
                let sums = trainee.metrics().read(gpu)?;
                let position = Position { epoch, step_in_epoch: first, global: at.global };
                checkpoint::save(gpu, &cfg.out, trainee.parameters(), &sums, &position, trainee.model_metadata()?)?;
                return Err(Interrupted { epoch, step: at.global, out: cfg.out.clone() }.into());
            }
            if monitor.wants_running() && last_tick.elapsed().as_secs_f64() > 0.25 {
                let sums = trainee.metrics().read(gpu)?;
                monitor.tick(first, Some(&trainee.running(&sums, first)), img_per_s);
                last_tick = Instant::now();
            } else {
                monitor.tick(first, None, img_per_s);
            }
        }
        gpu.wait();
        gpu.check_lost(&cfg.out)?;
        let train_seconds = start.elapsed().as_secs_f64();
        trainee.before_readback(gpu)?;
        let sums = trainee.metrics().read(gpu)?;
        if let Some(i) = sums.iter().position(|v| !v.is_finite()) {
            let kept = if cfg.out.join("checkpoint.safetensors").exists() {
                format!("the last good checkpoint is kept in {}", cfg.out.display())
            } else {
                "no checkpoint had been written yet".to_string()
            };
            bail!(
                "training diverged in epoch {epoch} (steps {}..{}): the {} is {}; {kept}. Try a lower --lr",
                at.global + 1 - (steps_per_epoch - first_step) as u32,
                at.global,
                trainee.metric_names()[i],
                sums[i],
            );
        }
        let mut record = Map::new();
        record.insert("epoch".into(), json!(epoch));
        record.extend(trainee.epoch_record(gpu, epoch, &sums, steps_per_epoch, &cfg.out)?);
        if let Some(se) = sample_eval.as_ref().filter(|se| epoch % se.every == 0) {
            if let Some(images) = trainee.samples(gpu, EVAL_SAMPLES)? {
                let s = crate::eval::score(&se.features, gpu, &images, &se.reference, trainee.asked(EVAL_SAMPLES).as_deref())?;
                record.insert("fd".into(), json!(round(s.fd, 3)));
                if let Some(a) = &s.agreement {
                    record.insert("class_agreement".into(), json!(round(a.overall, 4)));
                    record.insert("class_agreement_per_class".into(), json!(a.per_class.iter().map(|&v| round(v, 4)).collect::<Vec<_>>()));
                }
                record.insert("inception_score".into(), json!(round(s.inception_score, 3)));
                record.insert("modes".into(), json!(s.modes));
                record.insert("smallest_share".into(), json!(round(s.smallest_share, 4)));
                record.insert("effective_classes".into(), json!(round(s.effective_classes, 3)));
                record.insert("class_shares".into(), json!(s.class_shares.iter().map(|&v| round(v, 4)).collect::<Vec<_>>()));
            }
        }
        record.insert("img_per_s".into(), json!(round(((steps_per_epoch - first_step) * batch) as f64 / train_seconds, 1)));
        record.insert("seconds".into(), json!(round(start.elapsed().as_secs_f64(), 2)));
        writeln!(metrics_file, "{}", Value::Object(record.clone()))?;
        metrics_file.flush()?;
        records.push(record);
        #[cfg(not(target_arch = "wasm32"))]
        curves::draw(&cfg.out.join("curves.png"), &records, &panels)?;
        let last = records.last().expect("just pushed");
        let scores = match (last.get("fd").and_then(Value::as_f64), last.get("inception_score").and_then(Value::as_f64), last.get("modes")) {
            (Some(fd), Some(is), Some(modes)) => format!(
                "  FD {fd:.1}  IS {is:.2}  classes ≥5% {modes}/10  smallest {:.1}%  effective {:.2}",
                100.0 * last.get("smallest_share").and_then(Value::as_f64).unwrap_or(f64::NAN),
                last.get("effective_classes").and_then(Value::as_f64).unwrap_or(f64::NAN)
            ),
            _ => String::new(),
        } + &last.get("class_agreement").and_then(Value::as_f64).map_or(String::new(), |a| format!("  asked-for class {:.1}%", 100.0 * a));
        monitor.epoch_end(&format!("epoch {epoch:>3}/{}  {}{scores}", cfg.epochs, trainee.summary(last)));
        if epoch == cfg.epochs || (cfg.checkpoint_every > 0 && epoch % cfg.checkpoint_every == 0) {
            let next = Position { epoch: epoch + 1, step_in_epoch: 0, global: at.global };
            checkpoint::save(gpu, &cfg.out, trainee.parameters(), &vec![0.0; slots], &next, trainee.model_metadata()?)?;
        }
    }
    Ok(RunSummary { out: cfg.out.clone(), records })
}

/// wgen's cache folder: `$XDG_CACHE_HOME/wgen`, else `~/.cache/wgen`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wgen"))
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

/// A grid at twice the images' size: readable on its own, and a run's epochs still tile into
/// one `--progression` picture of a sensible size.
pub fn save_grid(path: &Path, images: &[f32], cols: usize) -> Result<()> {
    let (pixels, w, h) = crate::image::grid(images, 28, cols, 2, 2);
    crate::image::write_png(path, &pixels, w, h)
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
