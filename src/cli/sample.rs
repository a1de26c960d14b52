//! `wgen sample MODEL.safetensors`: images from a trained model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::gpu::Gpu;
use crate::models::gan::{Gan, GanConfig, GanSampler};
use crate::models::vae::{Vae, VaeConfig, VaeSampler};
use crate::nn::{Step, StepBuffer};
use crate::reference::sigmoid;
use crate::train::checkpoint::Checkpoint;

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A model.safetensors written by `wgen train`.
    model: PathBuf,
    /// How many images.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Write them as a PNG grid here [default: samples.png unless --raw is given].
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Write them as N×784 little-endian f32 in [0, 1], row-major, no header.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Images per grid row [default: the square root of n, rounded up].
    #[arg(long)]
    cols: Option<usize>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(gpu: &Gpu, a: &SampleArgs) -> Result<i32> {
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let ckpt = Checkpoint::read(&a.model)?;
    let config = ckpt.meta("config")?;
    let step = StepBuffer::new(gpu, "sample", 1);
    step.set(gpu, &Step::default());
    let images: Vec<f32> = match ckpt.meta("model")? {
        "vae" => {
            let cfg: VaeConfig = serde_json::from_str(config).context("the checkpoint's VAE config is unreadable")?;
            let (layout, state_layout, mut values, mut state) = Vae::initial(&cfg, 0);
            ckpt.fill(&layout, &mut values, &state_layout, &mut state)?;
            let vae = Vae::new(gpu, &cfg, &values, &state)?;
            let sampler = VaeSampler::new(gpu, &vae, a.n, &step.uniform, a.seed)?;
            sampler.program.run(gpu, "sample");
            crate::train::read_rows(gpu, sampler.decoder.output(), a.n, |v| sigmoid(f64::from(v)) as f32)?
        }
        "gan" => {
            let cfg: GanConfig = serde_json::from_str(config).context("the checkpoint's GAN config is unreadable")?;
            let (layout, state_layout, mut values, mut state) = Gan::initial(&cfg, 0);
            ckpt.fill(&layout, &mut values, &state_layout, &mut state)?;
            let gan = Gan::new(gpu, &cfg, &values, &state)?;
            let sampler = GanSampler::new(gpu, &gan, a.n, &step.uniform, a.seed)?;
            sampler.program.run(gpu, "sample");
            crate::train::read_rows(gpu, sampler.generator.output(), a.n, |v| cfg.output.to_unit(v))?
        }
        other => bail!("{}: model `{other}` is neither vae nor gan", a.model.display()),
    };
    if let Some(raw) = &a.raw {
        let bytes: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(raw, bytes).with_context(|| format!("cannot write {}", raw.display()))?;
        println!("wrote {} images to {}", a.n, raw.display());
    }
    let grid = a.grid.clone().or_else(|| a.raw.is_none().then(|| PathBuf::from("samples.png")));
    if let Some(path) = grid {
        let cols = a.cols.unwrap_or((a.n as f64).sqrt().ceil() as usize).max(1);
        crate::train::save_grid(&path, &images, cols)?;
        println!("wrote a grid of {} images to {}", a.n, path.display());
    }
    Ok(0)
}
