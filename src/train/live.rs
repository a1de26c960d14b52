//! A run its caller steps, a few steps at a time, with nothing that blocks or touches files:
//! the browser's trainer. The steps, the shuffles and the metric sums are the trainer's own
//! (`TrainConfig::steps`, `epoch_order`), so a page and `wgen train` with the same seed compute
//! the same losses.

use anyhow::{bail, Result};

use super::{fit_to_data, upload_test, upload_training, ModelRun, Position, TrainConfig};
use crate::data::{Dataset, DeviceSplit};
use crate::gpu::Gpu;

pub struct Live {
    cfg: TrainConfig,
    run: ModelRun,
    train: DeviceSplit,
    /// Kept alive for the buffers the VAE's test pass binds.
    _test: DeviceSplit,
    steps_per_epoch: usize,
    /// Where the run is, as the epoch loop keeps it: epoch 0 before the first step.
    at: Position,
    /// (epoch, step in it, metric sums) at the last `losses` read.
    last: (u32, usize, Vec<f32>),
    /// A line for each default changed to fit the data, as `wgen train` prints them.
    pub notes: Vec<String>,
}

/// Training metrics averaged over the steps since the previous read.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Global step count at the read.
    pub global: u32,
    pub epoch: u32,
    pub steps: usize,
    /// (key, mean per step), as `Trainee::losses` names them.
    pub values: Vec<(&'static str, f64)>,
}

/// The VAE's test split through the model: −ELBO per image and the first test images over
/// their reconstructions.
pub struct TestPass {
    pub neg_elbo: f64,
    /// [shown, C·H·W] in [0, 1]
    pub originals: Vec<f32>,
    /// [shown, C·H·W] in [0, 1]
    pub reconstructions: Vec<f32>,
}

impl Live {
    /// Uploads the data and builds the model's step program. `cfg` comes checked from
    /// `Settings::build`; what depends on the data (the batch against the split, the classes) is
    /// checked here, as `wgen train` checks it.
    pub fn new(gpu: &Gpu, cfg: &TrainConfig, dataset: Dataset) -> Result<Live> {
        if !(cfg.model.is_vae() || cfg.model.is_gan()) {
            bail!("{} is not a generative model; step a vae, conv-vae, gan or dcgan", cfg.model.name());
        }
        let mut cfg = cfg.clone();
        let notes = fit_to_data(&mut cfg, &dataset, false)?;
        let test = upload_test(gpu, &dataset)?;
        let train = upload_training(gpu, &cfg, dataset.train)?;
        let run = ModelRun::new(gpu, &cfg, &train, &test)?;
        let slots = run.trainee().metrics().len();
        let steps_per_epoch = train.count / cfg.batch;
        Ok(Live { cfg, run, train, _test: test, steps_per_epoch, at: Position { epoch: 0, step_in_epoch: 0, global: 0 }, last: (0, 0, vec![0.0; slots]), notes })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The images the model reads and draws.
    pub fn image(&self) -> crate::data::ImageShape {
        self.cfg.vae.as_ref().map(|v| v.image).or(self.cfg.gan.as_ref().map(|g| g.image)).unwrap_or_default()
    }

    /// Steps submitted so far.
    pub fn global_step(&self) -> u32 {
        self.at.global
    }

    /// What one training step dispatches.
    pub fn program(&self) -> &crate::gpu::Program {
        self.run.program()
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// Submits up to `n` steps (at most `steps_per_submit`) in one command buffer, never past
    /// the end of an epoch; returns how many. Starting an epoch shuffles and zeroes its sums.
    pub fn submit(&mut self, gpu: &Gpu, n: usize) -> usize {
        if self.at.epoch == 0 || self.at.step_in_epoch == self.steps_per_epoch {
            self.at = Position { epoch: self.at.epoch + 1, step_in_epoch: 0, global: self.at.global };
            self.at.start_epoch(gpu, &self.cfg, &self.train, self.run.trainee(), None);
        }
        self.at.submit(gpu, &self.cfg, &self.train, self.run.trainee(), n, self.steps_per_epoch)
    }

    /// The training metrics over the steps since the last read: a readback, so it waits for
    /// the submitted steps. A non-finite metric is an error saying what to change.
    pub async fn losses(&mut self, gpu: &Gpu) -> Result<Window> {
        let trainee = self.run.trainee();
        let sums = trainee.metrics().read_async(gpu).await?;
        let (epoch, from, base) = &self.last;
        let (from, window): (usize, Vec<f32>) = if *epoch == self.at.epoch {
            (*from, sums.iter().zip(base).map(|(s, b)| s - b).collect())
        } else {
            (0, sums.clone())
        };
        let steps = self.at.step_in_epoch - from;
        let values = trainee.losses(&window, steps);
        if let Some((key, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
            bail!("training diverged by step {}: {key} is {v}; reset with a lower learning rate", self.at.global);
        }
        self.last = (self.at.epoch, self.at.step_in_epoch, sums);
        Ok(Window { global: self.at.global, epoch: self.at.epoch, steps, values })
    }

    /// Samples from the run's fixed noise in [0, 1], 8 to a row (a row per class when
    /// conditioned): the per-epoch grid of `wgen train`; conditioned, with `class`, every image
    /// of that class.
    pub async fn grid(&self, gpu: &Gpu, class: Option<usize>) -> Result<Vec<f32>> {
        match &self.run {
            ModelRun::Vae(r) => r.grid(gpu, class).await,
            ModelRun::Gan(r) => r.grid(gpu, class).await,
            ModelRun::Classifier(_) => unreachable!("Live::new refuses the classifier"),
        }
    }

    /// The VAE's test pass with its first `shown` reconstructions; None for a GAN.
    pub async fn test_pass(&self, gpu: &Gpu, shown: usize) -> Result<Option<TestPass>> {
        let ModelRun::Vae(r) = &self.run else { return Ok(None) };
        let neg_elbo = r.test_pass(gpu).await?;
        let (originals, reconstructions) = r.reconstructions(gpu, shown).await?;
        Ok(Some(TestPass { neg_elbo, originals, reconstructions }))
    }

    /// The bytes of `model.safetensors` as the CLI writes it, from the weights as they are.
    pub async fn model_safetensors(&self, gpu: &Gpu) -> Result<Vec<u8>> {
        let trainee = self.run.trainee();
        super::checkpoint::model_safetensors(gpu, trainee.parameters(), trainee.model_metadata()?).await
    }
}
