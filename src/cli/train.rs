//! `wgen train vae|conv-vae|gan|dcgan|classifier`: flags, over an optional config file, over the defaults → a checked
//! TrainConfig → training.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::progress::Console;
use crate::gpu::Gpu;
use crate::models::gan::{Output, UpdateOrder};
use crate::models::Init;
use crate::nn::Activation;
use crate::train::{self, ModelKind, Schedule, Settings};

/// The settings of a run; each is a flag, or a key of the same name in `--config FILE`.
#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct TrainArgs {
    /// The model to train (or `model = "vae"` in the config file).
    #[arg(value_enum)]
    model: Option<ModelKind>,
    /// Take settings from this TOML file (keys are the flag names); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the interrupted or finished run in this folder (only --epochs may change).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Passes over the training split [default: 10].
    #[arg(long)]
    epochs: Option<u32>,
    /// Images per step [default: 128 for vae and conv-vae, 64 for gan and dcgan].
    #[arg(long)]
    batch: Option<usize>,
    /// Adam's learning rate [default: 1e-3 for vae, 2e-4 for gan, 4e-4 for the dcgan's G; its D
    /// has its own, --d-lr].
    #[arg(long)]
    lr: Option<f32>,
    /// The learning rate over the run: constant, or linear from --lr down to 0 at the last step
    /// [default: linear for classifier, constant for the others].
    #[arg(long, value_enum)]
    lr_schedule: Option<Schedule>,
    /// Adam's beta1 [default: 0.9 for vae, 0.5 for gan].
    #[arg(long)]
    beta1: Option<f32>,
    /// Adam's beta2 [default: 0.999].
    #[arg(long)]
    beta2: Option<f32>,
    /// Decoupled weight decay (AdamW); 0 is plain Adam [default: 0].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Seed of the weights, the shuffles and every noise draw [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Folder with the four MNIST-format files [default: the built-in 9,000/1,000 MNIST digits].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder [default: runs/<model>-N, the first N not taken].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write checkpoints every N epochs as well as at the end; 0: only at the end [default: 5].
    #[arg(long)]
    checkpoint_every: Option<u32>,
    /// Score 5,000 samples every N epochs (FD, IS, classes covered) [default: 5 when a classifier
    /// is at hand (the built-in one for the built-in digits, --classifier, or one cached for
    /// --data), else 0: never]. Given for data with no classifier, wgen trains one once.
    #[arg(long)]
    eval_every: Option<u32>,
    /// A classifier's model.safetensors (from `wgen train classifier`), for --eval-every
    /// [default: the one for the data, see --eval-every].
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Training steps recorded into one command buffer [default: 16].
    #[arg(long)]
    steps_per_submit: Option<usize>,
    /// Weight initialisation [default: torch].
    #[arg(long, value_enum)]
    init: Option<Init>,
    /// Latent size: the VAE's z or the GAN's noise [default: 32 for vae, 2 for vae --conditional,
    /// 100 for gan].
    #[arg(long)]
    z_dim: Option<usize>,
    /// GAN: the generator's hidden activation: identity, relu, leaky_relu[:SLOPE], sigmoid, tanh
    /// [default: leaky_relu:0.2].
    #[arg(long)]
    g_activation: Option<Activation>,
    /// GAN: the discriminator's hidden activation [default: leaky_relu:0.2].
    #[arg(long)]
    d_activation: Option<Activation>,
    /// GAN: batch norm after the generator's hidden layers but the first [default: true].
    #[arg(long)]
    g_batchnorm: Option<bool>,
    /// GAN: the generator's output; tanh trains on data in [-1, 1], sigmoid on [0, 1]
    /// [default: tanh].
    #[arg(long, value_enum)]
    output: Option<Output>,
    /// GAN: the discriminator's target for real images is 1 - this [default: 0].
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// GAN: the discriminator's learning rate [default: --lr; dcgan: 2e-5].
    #[arg(long)]
    d_lr: Option<f32>,
    /// GAN: keep an exponential moving average of the generator with this decay (e.g. 0.999,
    /// warmed up as min(decay, t/(9+t))); samples, evaluations and model.safetensors use it in
    /// place of G's last weights; 0 keeps none [default: 0.999].
    #[arg(long, value_name = "DECAY")]
    g_ema: Option<f32>,
    /// DCGAN: batch norm after the discriminator's second conv [default: true].
    #[arg(long)]
    d_batchnorm: Option<bool>,
    /// GAN: which network each step updates first; d-first judges G by the updated D
    /// [default: d-first].
    #[arg(long, value_enum)]
    update_order: Option<UpdateOrder>,
    /// vae, gan: condition on the digit's class, so samples can be asked for one (the CVAE's
    /// one-hot; PyTorch-GAN cgan's label embeddings). The classes are the data's labels.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    conditional: Option<bool>,
    /// Conditional gan: a projection discriminator, whose logit adds a head for the row's class
    /// to a shared head (Miyato & Koyama 2018); false gives PyTorch-GAN's cgan, whose D sees
    /// the label only beside the image [default: true with --conditional].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    projection: Option<bool>,
    /// Conditional vae: a learned prior mean per class, p(z|y) = N(m_y, I), instead of N(0, I)
    /// for every class [default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    class_prior: Option<bool>,
    /// Stop as Ctrl-C would once this many steps are done (for tests of resuming).
    #[arg(long, hide = true)]
    stop_after_steps: Option<u32>,
}

impl TrainArgs {
    /// The flags as settings, over the `--config` file's where given: `Settings::build` then
    /// picks the defaults and checks every value.
    pub fn settings(&self) -> Result<Settings> {
        let flags = Settings {
            model: self.model.clone(),
            epochs: self.epochs.clone(),
            batch: self.batch.clone(),
            lr: self.lr.clone(),
            lr_schedule: self.lr_schedule.clone(),
            beta1: self.beta1.clone(),
            beta2: self.beta2.clone(),
            weight_decay: self.weight_decay.clone(),
            seed: self.seed.clone(),
            data: self.data.clone(),
            out: self.out.clone(),
            checkpoint_every: self.checkpoint_every.clone(),
            eval_every: self.eval_every.clone(),
            classifier: self.classifier.clone(),
            steps_per_submit: self.steps_per_submit.clone(),
            init: self.init.clone(),
            z_dim: self.z_dim.clone(),
            g_activation: self.g_activation.clone(),
            d_activation: self.d_activation.clone(),
            g_batchnorm: self.g_batchnorm.clone(),
            output: self.output.clone(),
            label_smoothing: self.label_smoothing.clone(),
            d_lr: self.d_lr.clone(),
            g_ema: self.g_ema.clone(),
            d_batchnorm: self.d_batchnorm.clone(),
            update_order: self.update_order.clone(),
            conditional: self.conditional.clone(),
            projection: self.projection.clone(),
            class_prior: self.class_prior.clone(),
        };
        Ok(match &self.config {
            Some(path) => flags.over(read_config_file(path)?),
            None => flags,
        })
    }
}

/// Reads a config file: unknown keys and wrong types are refused with the file and key named.
fn read_config_file(path: &Path) -> Result<Settings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        let source = text.lines().nth(line - 1).unwrap_or("").trim();
        anyhow::anyhow!("{}: line {line} (`{source}`): {}", path.display(), e.message())
    })
}

pub fn run(gpu: &Gpu, args: &TrainArgs, quiet: bool) -> Result<i32> {
    let mut console = Console::new(quiet, args.stop_after_steps)?;
    let result = match &args.resume {
        Some(dir) => {
            let others = TrainArgs { model: None, resume: None, epochs: None, stop_after_steps: None, ..args.clone() };
            if others != TrainArgs::default() {
                bail!("--resume continues with the run's own settings (its config.json); only --epochs may be given with it");
            }
            if let Some(model) = args.model {
                let ran = train::run_model(dir)?;
                if ran != model {
                    bail!("{} is a {} run; resume it with `wgen train {} --resume {}` (or without the model)", dir.display(), ran.name(), ran.name(), dir.display());
                }
            }
            train::resume(gpu, dir, args.epochs, &mut console)
        }
        None => {
            let cfg = args.settings()?.build()?;
            train::train(gpu, &cfg, &mut console)
        }
    };
    console.finish();
    match result {
        Ok(summary) => {
            console.say(&format!("done: {0}/model.safetensors, {0}/curves.png, {0}/samples/", summary.out.display()));
            Ok(0)
        }
        Err(e) => match e.downcast::<train::Interrupted>() {
            Ok(stop) => {
                eprintln!("{stop}");
                Ok(130)
            }
            Err(e) => Err(e),
        },
    }
}
