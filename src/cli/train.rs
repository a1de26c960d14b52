//! `wgen train vae|gan`: flags → a checked TrainConfig → training.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{ArgAction, Args};

use crate::gpu::Gpu;
use crate::models::gan::{GanConfig, Output};
use crate::models::vae::VaeConfig;
use crate::models::Init;
use crate::nn::{Activation, AdamConfig};
use crate::train::{self, ModelKind, TrainConfig};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The model to train.
    #[arg(value_enum)]
    model: ModelKind,
    /// Passes over the training split.
    #[arg(long, default_value_t = 10)]
    epochs: u32,
    /// Images per step [default: 128 for vae, 64 for gan].
    #[arg(long)]
    batch: Option<usize>,
    /// Adam's learning rate [default: 1e-3 for vae, 2e-4 for gan].
    #[arg(long)]
    lr: Option<f32>,
    /// Adam's beta1 [default: 0.9 for vae, 0.5 for gan].
    #[arg(long)]
    beta1: Option<f32>,
    /// Adam's beta2.
    #[arg(long, default_value_t = 0.999)]
    beta2: f32,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Seed of the weights, the shuffles and every noise draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the four MNIST-format files [default: the built-in 9,000/1,000 MNIST digits].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder [default: runs/<model>-N, the first N not taken].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write model.safetensors every N epochs as well as at the end (0: only at the end).
    #[arg(long, default_value_t = 5)]
    checkpoint_every: u32,
    /// Training steps recorded into one command buffer.
    #[arg(long, default_value_t = 32)]
    steps_per_submit: usize,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value_t = Init::Torch)]
    init: Init,
    /// Latent size: the VAE's z or the GAN's noise [default: 32 for vae, 100 for gan].
    #[arg(long)]
    z_dim: Option<usize>,
    /// GAN: the generator's hidden activation (identity, relu, leaky_relu[:SLOPE], sigmoid, tanh).
    #[arg(long, default_value = "leaky_relu:0.2")]
    g_activation: Activation,
    /// GAN: the discriminator's hidden activation.
    #[arg(long, default_value = "leaky_relu:0.2")]
    d_activation: Activation,
    /// GAN: batch norm after the generator's hidden layers but the first.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    g_batchnorm: bool,
    /// GAN: the generator's output (tanh trains on data in [-1, 1], sigmoid on [0, 1]).
    #[arg(long, value_enum, default_value_t = Output::Tanh)]
    output: Output,
    /// GAN: the discriminator's target for real images is 1 - this.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
}

/// Turns flags into a checked config; every refusal says which flag and why.
pub fn construct_config(a: &TrainArgs) -> Result<TrainConfig> {
    let vae = a.model == ModelKind::Vae;
    let defaults = TrainConfig::defaults(a.model);
    let batch = a.batch.unwrap_or(defaults.batch);
    let lr = a.lr.unwrap_or(defaults.adam.lr);
    let beta1 = a.beta1.unwrap_or(defaults.adam.beta1);
    if a.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr must be a positive number, got {lr}");
    }
    for (name, b) in [("--beta1", beta1), ("--beta2", a.beta2)] {
        if !(0.0..1.0).contains(&b) {
            bail!("{name} must be in [0, 1), got {b}");
        }
    }
    if !(a.weight_decay.is_finite() && a.weight_decay >= 0.0) {
        bail!("--weight-decay must be zero or positive, got {}", a.weight_decay);
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        bail!("--label-smoothing must be in [0, 1), got {}", a.label_smoothing);
    }
    if a.steps_per_submit == 0 {
        bail!("--steps-per-submit must be at least 1");
    }
    let z_dim = a.z_dim.unwrap_or(if vae { 32 } else { 100 });
    if z_dim == 0 {
        bail!("--z-dim must be at least 1");
    }
    let model = if vae { "vae" } else { "gan" };
    let out = match &a.out {
        Some(out) => out.clone(),
        None => (1..).map(|n| PathBuf::from(format!("runs/{model}-{n}"))).find(|p| !p.exists()).expect("some name is free"),
    };
    Ok(TrainConfig {
        model: a.model,
        epochs: a.epochs,
        batch,
        adam: AdamConfig { weight_decay: a.weight_decay, ..AdamConfig::new(lr, beta1, a.beta2) },
        seed: a.seed,
        data: a.data.clone(),
        out,
        checkpoint_every: a.checkpoint_every,
        steps_per_submit: a.steps_per_submit,
        vae: defaults.vae.map(|v| VaeConfig { latent: z_dim, init: a.init, ..v }),
        gan: defaults.gan.map(|g| GanConfig {
            latent: z_dim,
            g_activation: a.g_activation,
            d_activation: a.d_activation,
            g_batchnorm: a.g_batchnorm,
            output: a.output,
            label_smoothing: a.label_smoothing,
            init: a.init,
            ..g
        }),
    })
}

pub fn run(gpu: &Gpu, args: &TrainArgs) -> Result<i32> {
    let cfg = construct_config(args)?;
    println!(
        "training {:?} on {} for {} epochs, batch {}, into {}",
        cfg.model,
        gpu.adapter_name(),
        cfg.epochs,
        cfg.batch,
        cfg.out.display()
    );
    let summary = train::train(gpu, &cfg)?;
    println!("done: {}/model.safetensors, metrics.jsonl and samples/", summary.out.display());
    Ok(0)
}
