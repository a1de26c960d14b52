//! `wgen profile vae|gan`: per-kernel GPU time of real training steps.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::data::{self, DeviceSplit};
use crate::gpu::{profile, Gpu, ProfileClock, ProfileReport, StepInputs};
use crate::models::gan::UpdateOrder;
use crate::nn::{AugmentPolicy, GanLoss, StagedSteps};
use crate::train::{batch_rows, checkpoint::write_atomically, upload_test, upload_training, ModelKind, ModelRun, TrainConfig};

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// The model whose training step to profile.
    #[arg(value_enum)]
    model: ModelKind,
    /// Training steps to time (after 3 unmeasured warm-up steps).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Images per step [default: the model's training default, 128 for vae, 64 for gan].
    #[arg(long)]
    batch: Option<usize>,
    /// Also write a Chrome trace (Perfetto, chrome://tracing) here.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// A folder of images or the four MNIST-format files, as `wgen train --data` takes [default:
    /// the built-in digits].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Images resized to N×N, as `wgen train --size` [default: the size the data's images share].
    #[arg(long, value_name = "N")]
    size: Option<usize>,
    /// 1 (grey) or 3 (RGB), as `wgen train --channels`.
    #[arg(long)]
    channels: Option<usize>,
    /// Stream the training images from host memory, as `wgen train --stream` (and as it does
    /// unasked for data larger than one storage binding); the profile then times the staging.
    #[arg(long)]
    stream: bool,
    /// GAN: profile the step that updates this network first [default: d-first].
    #[arg(long, value_enum)]
    update_order: Option<UpdateOrder>,
    /// Profile the class-conditional model's step (classes from the data's labels).
    #[arg(long)]
    conditional: bool,
    /// GAN: profile the step with this objective, as `wgen train --loss` [default: bce].
    #[arg(long, value_enum)]
    loss: Option<GanLoss>,
    /// GAN: profile the step with these augmentations, as `wgen train --augment` [default: none].
    #[arg(long, value_name = "POLICY")]
    augment: Option<AugmentPolicy>,
    /// GAN: profile the step with spectral norm on D, as `wgen train --spectral-norm`.
    #[arg(long)]
    spectral_norm: bool,
}

pub fn run(gpu: &Gpu, a: &ProfileArgs) -> Result<i32> {
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let mut cfg = TrainConfig::defaults(a.model);
    cfg.batch = a.batch.unwrap_or(cfg.batch);
    cfg.data = a.data.clone();
    cfg.images = data::ImageOptions { size: a.size, channels: a.channels, ..Default::default() };
    cfg.stream = a.stream;
    if (a.loss.is_some() || a.augment.is_some() || a.spectral_norm) && !cfg.model.is_gan() {
        bail!("--loss, --augment and --spectral-norm are for gan and dcgan");
    }
    if let Some(gan) = cfg.gan.as_mut() {
        gan.update_order = a.update_order.unwrap_or(gan.update_order);
        gan.loss = a.loss.unwrap_or(gan.loss);
        gan.augment = a.augment.unwrap_or(gan.augment);
        gan.spectral_norm = a.spectral_norm;
    }
    // Room for the 3 warm-up steps too: they go in one submit.
    cfg.steps_per_submit = a.steps.clamp(3, 256);
    let dataset = data::load(cfg.data.as_deref(), &cfg.images, &mut |_, _| {})?;
    crate::train::shape_to(&mut cfg, &dataset, false)?;
    if a.conditional {
        if cfg.model == ModelKind::Classifier {
            bail!("--conditional is for the generative models; a classifier already learns from the labels");
        }
        let k = dataset.train.classes();
        cfg = cfg.conditioned();
        if let Some(v) = cfg.vae.as_mut() {
            v.classes = Some(k);
        }
        if let Some(g) = cfg.gan.as_mut() {
            g.classes = Some(k);
        }
    }
    if cfg.batch == 0 || cfg.batch > dataset.train.count {
        bail!("--batch must be between 1 and the {} training images", dataset.train.count);
    }
    let epoch_steps = dataset.train.count / cfg.batch;
    let test = upload_test(gpu, &dataset)?;
    let train = upload_training(gpu, &cfg, dataset.train)?;
    let run = ModelRun::new(gpu, &cfg, &train, &test)?;
    let warm_up = cfg.steps(0, 3, epoch_steps);
    train.feed(gpu, &batch_rows(&warm_up, cfg.batch));
    crate::nn::submit_steps(gpu, run.program(), run.steps(), &warm_up);
    gpu.wait();
    let steps = cfg.steps(3, a.steps, epoch_steps);
    let report = profile(gpu, run.program(), &FedSteps { staged: StagedSteps { buffer: run.steps(), steps: &steps }, split: &train, batch: cfg.batch });
    print!("{}", render(&report, a.model.name(), cfg.batch, &gpu.adapter_name()));
    if let Some((window, written)) = train.streamed() {
        let per_step = (written as f64 / (a.steps + 3) as f64) / 1e6;
        println!(
            "data: streamed from host memory through a ring of {window} images, {per_step:.2} MB a step; staging took {:.3} ms a step on the host ({:.1}% of the wall step), before each submit",
            report.stage_ns_per_step / 1e6,
            100.0 * report.stage_ns_per_step / report.wall_ns_per_step
        );
    }
    if let Some(path) = &a.trace {
        let json = serde_json::to_string(&report.trace_json())?;
        write_atomically(path, json.as_bytes()).with_context(|| format!("writing the trace {}", path.display()))?;
        println!("trace: {} ({} events; open in https://ui.perfetto.dev or chrome://tracing)", path.display(), report.events.len());
    }
    Ok(0)
}

/// The report as printed: a table sorted by total time, then the whole step.
pub fn render(r: &ProfileReport, model: &str, batch: usize, adapter: &str) -> String {
    let how = match r.clock {
        ProfileClock::InsidePasses => "GPU timestamps between dispatches, one pass per step",
        ProfileClock::PassBoundaries => "GPU timestamps at pass boundaries, one pass per dispatch (profiling only)",
        ProfileClock::WallClock => "this adapter has no timestamp queries: whole steps on the wall clock, no per-kernel times",
    };
    let mut out = format!("profile of {} {model} training steps, batch {batch}, on {adapter}\n({how})\n", r.steps);
    let step_ns: f64 = r.rows.iter().map(|k| k.total_ns).sum::<f64>() / r.steps.max(1) as f64;
    if !r.rows.is_empty() {
        let width = r.rows.iter().map(|k| k.name.chars().count()).max().unwrap_or(6).max(6);
        out += &format!("{:<width$} {:>6} {:>10} {:>9} {:>6} {:>8} {:>7}\n", "kernel", "calls", "total ms", "mean µs", "share", "GFLOP/s", "GB/s");
        for k in &r.rows {
            let share = k.total_ns / r.steps.max(1) as f64 / step_ns * 100.0;
            out += &format!(
                "{:<width$} {:>6} {:>10.2} {:>9.1} {:>5.1}% {:>8.2} {:>7.2}\n",
                k.name,
                k.calls,
                k.total_ns / 1e6,
                k.mean_us(),
                share,
                k.gflops(),
                k.gbytes_per_s()
            );
        }
    }
    let wall = r.wall_ns_per_step / 1e6;
    match r.gpu_ns_per_step {
        Some(gpu) => {
            let gpu = gpu / 1e6;
            out += &format!(
                "step: {} dispatches; GPU {gpu:.3} ms (kernels {:.3} ms), wall {wall:.3} ms, gap {:.3} ms (CPU/driver overhead)\n",
                r.dispatches_per_step,
                step_ns / 1e6,
                wall - gpu
            );
        }
        None => out += &format!("step: {} dispatches; wall {wall:.3} ms\n", r.dispatches_per_step),
    }
    out
}

/// Steps whose staging also feeds a streamed training split their batches, as training does
/// before each submit (a resident split needs nothing).
struct FedSteps<'a> {
    staged: StagedSteps<'a>,
    split: &'a DeviceSplit,
    batch: usize,
}

impl StepInputs for FedSteps<'_> {
    fn count(&self) -> usize {
        self.staged.count()
    }

    fn capacity(&self) -> usize {
        self.staged.capacity()
    }

    fn stage(&self, gpu: &Gpu, range: std::ops::Range<usize>) {
        self.split.feed(gpu, &batch_rows(&self.staged.steps[range.clone()], self.batch));
        self.staged.stage(gpu, range);
    }

    fn select(&self, encoder: &mut wgpu::CommandEncoder, i: usize) {
        self.staged.select(encoder, i);
    }
}
