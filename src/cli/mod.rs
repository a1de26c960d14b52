//! The command line: flags are parsed by clap, checked into a config, then handed to the work.

mod bench;
mod compare;
mod eval;
mod profile;
mod progress;
mod sample;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::gpu::{list_adapters, BackendChoice, Gpu, GpuOptions};
use crate::train::{remember_conv, settle_conv, settle_matmul, MatmulSource};

#[derive(Parser, Debug)]
#[command(name = "wgen", version, about = "Train MLP GANs and VAEs entirely on the GPU with wgpu and WGSL kernels")]
pub struct Cli {
    /// Graphics API to use (default: the best adapter of any).
    #[arg(long, global = true, value_enum)]
    backend: Option<BackendChoice>,
    /// Pick the adapter whose name contains this (case-insensitive); see `wgen devices`.
    #[arg(long, global = true, env = "WGEN_ADAPTER")]
    adapter: Option<String>,
    /// Print nothing but errors (train, eval and sample; their results are in the files they write).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every GPU adapter wgen can use, best first.
    Devices,
    /// Train a model on the GPU.
    #[command(allow_negative_numbers = true)]
    Train(train::TrainArgs),
    /// Draw images from a trained model.
    Sample(sample::SampleArgs),
    /// Quality numbers of a trained model: ELBO and IWAE bound (VAE), FD, IS, class coverage.
    Eval(eval::EvalArgs),
    /// Time every kernel of real training steps on the GPU.
    Profile(profile::ProfileArgs),
    /// Measure kernel and training speed.
    Bench(bench::BenchArgs),
    /// The sample-quality table of runs trained with --eval-every (seeds grouped).
    Compare(compare::CompareArgs),
}

impl Cli {
    fn gpu_options(&self) -> GpuOptions {
        GpuOptions {
            backend: self.backend,
            adapter: self.adapter.clone(),
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn run() -> Result<i32> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            e.print()?;
            return Ok(0);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e.to_string()));
            return Ok(2);
        }
    };
    match &cli.command {
        Command::Devices => devices(&cli),
        Command::Train(args) => with_gpu(&cli, |gpu| train::run(gpu, args, cli.quiet)),
        Command::Eval(args) => with_gpu(&cli, |gpu| eval::run(gpu, args, cli.quiet)),
        Command::Profile(args) => with_gpu(&cli, |gpu| profile::run(gpu, args)),
        Command::Sample(args) => with_gpu(&cli, |gpu| sample::run(gpu, args, cli.quiet)),
        Command::Bench(args) => with_gpu(&cli, |gpu| bench::run(gpu, args)),
        Command::Compare(args) => compare::run(args),
    }
}

/// Runs `work` on the chosen adapter, then keeps the conv plans it timed (even when the work
/// failed: the timings stay true).
fn with_gpu(cli: &Cli, work: impl FnOnce(&Gpu) -> Result<i32>) -> Result<i32> {
    let gpu = open_gpu(cli)?;
    let code = work(&gpu);
    if let Some((count, kept)) = remember_conv(&gpu) {
        if !cli.quiet {
            let kept = kept.map_or_else(|e| format!("not cached: {e:#}"), |f| format!("remembered in {}", f.display()));
            eprintln!("wgen: timed the convolution paths of {count} layer shape(s) on {} ({kept})", gpu.adapter_name());
        }
    }
    code
}

/// The chosen adapter with its matmul family settled (tuned on first use where that applies)
/// and its conv plans loaded.
fn open_gpu(cli: &Cli) -> Result<Gpu> {
    let mut gpu = Gpu::new(&cli.gpu_options())?;
    if let MatmulSource::Tuned { cached } = settle_matmul(&mut gpu)? {
        if !cli.quiet {
            let kept = cached.map_or("not cached".to_string(), |f| format!("remembered in {}", f.display()));
            eprintln!("wgen: timed the matmul kernels on {}: {:?} is fastest ({kept})", gpu.adapter_name(), gpu.matmul);
        }
    }
    settle_conv(&gpu);
    Ok(gpu)
}

/// The data folder (None: the built-in digits) and image options of the run in `dir`, from its
/// config.json; None where `dir` holds no run.
pub(crate) fn run_data(dir: &std::path::Path) -> Option<(Option<std::path::PathBuf>, Option<crate::data::ImageOptions>)> {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).ok()?).ok()?;
    let data = json["config"]["data"].as_str().map(std::path::PathBuf::from);
    Some((data, serde_json::from_value(json["config"]["images"].clone()).ok()))
}

/// clap's first paragraph on one line: the usage block that follows is for --help.
fn one_line(message: &str) -> String {
    let first: Vec<&str> = message.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    format!("{} (see --help)", first.join(" "))
}

fn devices(cli: &Cli) -> Result<i32> {
    let adapters = list_adapters(cli.backend);
    if adapters.is_empty() {
        return Err(crate::gpu::GpuError::NoAdapter { backend: String::new() }.into());
    }
    let chosen = Gpu::new(&cli.gpu_options())
        .ok()
        .map(|g| (g.info.name.clone(), format!("{:?}", g.info.backend).to_lowercase()));
    println!("{} adapter(s), best first; * marks the one wgen uses (--adapter or WGEN_ADAPTER to choose):", adapters.len());
    for a in &adapters {
        let is_chosen = chosen.as_ref().is_some_and(|(name, backend)| *name == a.name && *backend == a.backend);
        let mark = if is_chosen { "*" } else { " " };
        println!("{mark} {a}");
    }
    Ok(0)
}
