//! `wgen train vae|conv-vae|gan|dcgan|classifier`: flags, over an optional config file, over the defaults → a checked
//! TrainConfig → training.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::progress::Console;
use crate::gpu::Gpu;
use crate::models::gan::{GanConfig, Output, UpdateOrder};
use crate::models::vae::VaeConfig;
use crate::models::Init;
use crate::nn::{Activation, AdamConfig};
use crate::train::{self, ModelKind, Schedule, TrainConfig};

/// The settings of a run; each is a flag, or a key of the same name in `--config FILE`.
#[derive(Args, Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainArgs {
    /// The model to train (or `model = "vae"` in the config file).
    #[arg(value_enum)]
    model: Option<ModelKind>,
    /// Take settings from this TOML file (keys are the flag names); flags override it.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Continue the interrupted or finished run in this folder (only --epochs may change).
    #[arg(long, value_name = "RUN_DIR")]
    #[serde(skip)]
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
    #[serde(skip)]
    stop_after_steps: Option<u32>,
}

/// Reads a config file: unknown keys and wrong types are refused with the file and key named.
pub fn read_config_file(path: &Path) -> Result<TrainArgs> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        let source = text.lines().nth(line - 1).unwrap_or("").trim();
        anyhow::anyhow!("{}: line {line} (`{source}`): {}", path.display(), e.message())
    })
}

/// Turns flags (over the config file, over the defaults) into a checked config; every refusal
/// says which setting and why.
pub fn construct_config(a: &TrainArgs) -> Result<TrainConfig> {
    let file = match &a.config {
        Some(path) => read_config_file(path)?,
        None => TrainArgs::default(),
    };
    macro_rules! pick {
        ($field:ident) => {
            a.$field.clone().or(file.$field.clone())
        };
    }
    let Some(model) = pick!(model) else {
        bail!("which model? `wgen train vae` or `wgen train gan` (or `model = \"vae\"` in --config)");
    };
    let defaults = TrainConfig::defaults(model);
    let batch = pick!(batch).unwrap_or(defaults.batch);
    let lr = pick!(lr).unwrap_or(defaults.adam.lr);
    let beta1 = pick!(beta1).unwrap_or(defaults.adam.beta1);
    let beta2 = pick!(beta2).unwrap_or(defaults.adam.beta2);
    let weight_decay = pick!(weight_decay).unwrap_or(0.0);
    let epochs = pick!(epochs).unwrap_or(defaults.epochs);
    let steps_per_submit = pick!(steps_per_submit).unwrap_or(16);
    let label_smoothing = pick!(label_smoothing).unwrap_or(0.0);
    if epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr must be a positive number, got {lr}");
    }
    for (name, b) in [("--beta1", beta1), ("--beta2", beta2)] {
        if !(0.0..1.0).contains(&b) {
            bail!("{name} must be in [0, 1), got {b}");
        }
    }
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        bail!("--weight-decay must be zero or positive, got {weight_decay}");
    }
    let d_lr = pick!(d_lr);
    if let Some(d_lr) = d_lr.filter(|l| !(l.is_finite() && *l > 0.0)) {
        bail!("--d-lr must be a positive number, got {d_lr}");
    }
    if d_lr.is_some() && !model.is_gan() {
        bail!("--d-lr is for gan and dcgan: the discriminator's learning rate");
    }
    let g_ema = pick!(g_ema);
    if let Some(decay) = g_ema.filter(|d| !(0.0..1.0).contains(d)) {
        bail!("--g-ema must be in [0, 1) (0.999 is usual; 0 keeps no average), got {decay}");
    }
    if g_ema.is_some() && !model.is_gan() {
        bail!("--g-ema is for gan and dcgan: an average of the generator");
    }
    if pick!(d_batchnorm).is_some() && model != ModelKind::Dcgan {
        bail!("--d-batchnorm is for the dcgan; the MLP gan's discriminator has no batch norm");
    }
    if !(0.0..1.0).contains(&label_smoothing) {
        bail!("--label-smoothing must be in [0, 1), got {label_smoothing}");
    }
    if steps_per_submit == 0 || steps_per_submit > 4096 {
        bail!("--steps-per-submit must be between 1 and 4096");
    }
    let conditional = pick!(conditional).unwrap_or(false);
    if conditional && model == ModelKind::Classifier {
        bail!("--conditional is for vae and gan; a classifier already learns from the labels");
    }
    match model {
        ModelKind::ConvVae | ModelKind::Dcgan if conditional => {
            let mlp = if model.is_vae() { "vae" } else { "gan" };
            bail!("--conditional is for the MLP vae and gan; the {} has no conditional form yet (train `{mlp} --conditional`)", model.name());
        }
        ModelKind::Dcgan if pick!(g_batchnorm).is_some() => {
            bail!("--g-batchnorm is for the MLP gan; the dcgan's batch norms are part of its architecture");
        }
        _ => {}
    }
    let projection = pick!(projection).unwrap_or(model == ModelKind::Gan && conditional);
    if projection && !(model == ModelKind::Gan && conditional) {
        bail!("--projection is for `gan --conditional`: it gives the discriminator a head per class");
    }
    let vae = model.is_vae();
    let z_dim = pick!(z_dim).unwrap_or(match (vae, conditional) {
        (true, false) => 32,
        // A CVAE's z holds what the label does not; the wider it is, the more of the class it
        // keeps too, and prior samples ignore the label (README, "Class-conditional models").
        (true, true) => train::CVAE_LATENT,
        (false, _) => 100,
    });
    if z_dim == 0 {
        bail!("--z-dim must be at least 1");
    }
    let name = model.name();
    let out = match pick!(out) {
        Some(out) => out,
        None => (1..).map(|n| PathBuf::from(format!("runs/{name}-{n}"))).find(|p| !p.exists()).expect("some name is free"),
    };
    let init = pick!(init).unwrap_or(Init::Torch);
    Ok(TrainConfig {
        model,
        epochs,
        batch,
        adam: AdamConfig { weight_decay, ..AdamConfig::new(lr, beta1, beta2) },
        lr_schedule: pick!(lr_schedule).unwrap_or(defaults.lr_schedule),
        seed: pick!(seed).unwrap_or(0),
        data: pick!(data),
        out,
        checkpoint_every: pick!(checkpoint_every).unwrap_or(defaults.checkpoint_every),
        eval_every: pick!(eval_every).or(defaults.eval_every),
        classifier_path: pick!(classifier),
        steps_per_submit,
        conditional,
        vae: defaults.vae.map(|v| VaeConfig { latent: z_dim, init, class_prior: pick!(class_prior).unwrap_or(v.class_prior), ..v }),
        gan: defaults.gan.map(|g| GanConfig {
            latent: z_dim,
            g_activation: pick!(g_activation).unwrap_or(g.g_activation),
            d_activation: pick!(d_activation).unwrap_or(g.d_activation),
            g_batchnorm: pick!(g_batchnorm).unwrap_or(g.g_batchnorm),
            output: pick!(output).unwrap_or(g.output),
            label_smoothing,
            init,
            update_order: pick!(update_order).unwrap_or(g.update_order),
            d_lr: d_lr.or(g.d_lr),
            g_ema: g_ema.map_or(g.g_ema, |d| (d > 0.0).then_some(d)),
            d_batchnorm: pick!(d_batchnorm).unwrap_or(g.d_batchnorm),
            projection,
            ..g
        }),
        classifier: defaults.classifier.map(|c| crate::models::classifier::ClassifierConfig { init, ..c }),
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
            let cfg = construct_config(args)?;
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
