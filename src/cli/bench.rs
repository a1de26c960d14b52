//! `wgen bench`: end-to-end training throughput of both models (`train`) and matmul throughput
//! on their real layer shapes, the tiled and vec4 kernels next to the naive
//! one-thread-per-output baseline (`kernels`), all timed in the same run.

use anyhow::Result;
use clap::{Args, ValueEnum};

use std::time::Instant;

use crate::data::{self, DeviceSplit};
use crate::gpu::{time_launches, Gpu, Kernel, Launch, MatmulImpl};
use crate::nn::submit_steps;
use crate::train::{ModelKind, ModelRun, TrainConfig};
use crate::models::linear_layers;
use crate::nn::{ConvOperands, LayerOperands};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value_t = BenchWhat::All)]
    what: BenchWhat,
    /// Print one JSON object per case instead of a table.
    #[arg(long)]
    json: bool,
    /// Repetitions per case, recorded into one compute pass.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    reps: u32,
    /// Batch sizes of the kernel and conv cases.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 128])]
    batch: Vec<usize>,
    /// Seconds to time each training case for.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Only these models' training cases [default: all].
    #[arg(long, value_delimiter = ',', value_enum)]
    models: Vec<ModelKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchWhat {
    /// Training throughput, then the kernels.
    All,
    /// Training steps per second of both models at their default and larger batches.
    Train,
    /// Matmul GFLOP/s on the models' layer shapes.
    Kernels,
    /// Conv layers' GFLOP/s (im2col/col2im and the matmul together) on the conv models' shapes.
    Conv,
}

/// Training cases: each model at its default batch and at larger ones.
const TRAIN_CASES: &[(ModelKind, usize)] =
    &[(ModelKind::Gan, 64), (ModelKind::Gan, 256), (ModelKind::Vae, 128), (ModelKind::Vae, 512), (ModelKind::ConvVae, 128), (ModelKind::Dcgan, 64)];

#[derive(serde::Serialize)]
struct TrainCase {
    case: &'static str,
    model: ModelKind,
    batch: usize,
    matmul: MatmulImpl,
    /// True for the family wgen trains with on this adapter.
    default: bool,
    steps: usize,
    steps_per_s: f64,
    img_per_s: f64,
    /// img/s over the tiled family's in the same run.
    over_tiled: f64,
    dispatches_per_step: usize,
    adapter: String,
}

/// Each model at each batch, once per matmul family the adapter can run, the families
/// interleaved case by case so drift in the machine's speed hits them alike.
fn bench_train(gpu: &Gpu, args: &BenchArgs) -> Result<()> {
    let dataset = data::load(None)?;
    let train = DeviceSplit::upload(gpu, "train", &dataset.train)?;
    let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
    let families: Vec<(MatmulImpl, Gpu)> = gpu.matmul_families().into_iter().map(|f| (f, gpu.with_matmul(f))).collect();
    if !args.json {
        println!("training steps on {} (built-in data, about {} s per case; * marks the matmul family wgen uses)", gpu.adapter_name(), args.seconds);
        println!("{:<8} {:>6} {:<10} {:>7} {:>9} {:>9} {:>8} {:>11}", "model", "batch", "matmul", "steps", "steps/s", "img/s", "× tiled", "dispatches");
    }
    for &(model, batch) in TRAIN_CASES.iter().filter(|(m, _)| args.models.is_empty() || args.models.contains(m)) {
        let mut cfg = TrainConfig::defaults(model);
        cfg.batch = batch;
        cfg.steps_per_submit = 16;
        let epoch_steps = dataset.train.count / batch;
        let mut tiled_rate = None;
        for (family, fgpu) in &families {
            let run = ModelRun::new(fgpu, &cfg, &train, &test)?;
            // Two warm-up steps, then submits of 16 steps until the time is up.
            submit_steps(fgpu, run.program(), run.steps(), &cfg.steps(0, 2, epoch_steps));
            fgpu.wait();
            let start = Instant::now();
            let mut done = 0usize;
            while start.elapsed().as_secs_f64() < args.seconds || done == 0 {
                submit_steps(fgpu, run.program(), run.steps(), &cfg.steps(2 + done as u32, 16, epoch_steps));
                fgpu.wait();
                done += 16;
            }
            let per_s = done as f64 / start.elapsed().as_secs_f64();
            let img_per_s = per_s * batch as f64;
            let tiled = *tiled_rate.get_or_insert(img_per_s);
            let case = TrainCase {
                case: "train",
                model,
                batch,
                matmul: *family,
                default: *family == gpu.matmul,
                steps: done,
                steps_per_s: (per_s * 10.0).round() / 10.0,
                img_per_s: img_per_s.round(),
                over_tiled: (img_per_s / tiled * 100.0).round() / 100.0,
                dispatches_per_step: run.program().dispatch_count(),
                adapter: gpu.adapter_name(),
            };
            if args.json {
                println!("{}", serde_json::to_string(&case)?);
            } else {
                let name = format!("{}{}", format!("{family:?}").to_lowercase(), if case.default { "*" } else { "" });
                println!(
                    "{:<8} {:>6} {:<10} {:>7} {:>9.1} {:>9.0} {:>7.2}× {:>11}",
                    model.name(), batch, name, done, case.steps_per_s, case.img_per_s, case.over_tiled, case.dispatches_per_step
                );
            }
        }
    }
    Ok(())
}


#[derive(serde::Serialize)]
struct Case {
    case: &'static str,
    model: &'static str,
    layer: String,
    layout: &'static str,
    batch: usize,
    shape: String,
    /// 2·m·n·k / 1e6
    mflop: f64,
    tiled_gflops: f64,
    /// None where the shape does not fit the family (it would fall back to another).
    vec4_gflops: Option<f64>,
    subgroup_gflops: Option<f64>,
    naive_gflops: f64,
    /// The family wgen trains with on this adapter, after its fallbacks.
    wgen_kernel: Kernel,
    wgen_gflops: f64,
    clock: crate::gpu::Clock,
    adapter: String,
}

pub fn run(gpu: &Gpu, args: &BenchArgs) -> Result<i32> {
    if matches!(args.what, BenchWhat::All | BenchWhat::Train) {
        bench_train(gpu, args)?;
    }
    if matches!(args.what, BenchWhat::All | BenchWhat::Kernels) {
        bench_kernels(gpu, args)?;
    }
    if matches!(args.what, BenchWhat::All | BenchWhat::Conv) {
        bench_conv(gpu, args)?;
    }
    Ok(0)
}

#[derive(serde::Serialize)]
struct ConvCase {
    case: &'static str,
    model: &'static str,
    layer: String,
    pass: &'static str,
    batch: usize,
    shape: String,
    /// 2·batch·pixels·patch·out_ch / 1e6, the same for the three passes
    mflop: f64,
    /// The whole pass (data movement and matmul) with each matmul family; None where the
    /// family falls back to another for every matmul of the pass.
    tiled_gflops: f64,
    vec4_gflops: Option<f64>,
    subgroup_gflops: Option<f64>,
    wgen_gflops: f64,
    /// The share of wgen's time in the pass's matmul; the rest is im2col, col2im, transposes
    /// and sums.
    matmul_share: f64,
    adapter: String,
}

/// Each conv layer's forward, dX and dW passes, timed whole with each matmul family, and the
/// share of the time the matmul takes: what the lowering to matmuls costs.
fn bench_conv(gpu: &Gpu, args: &BenchArgs) -> Result<()> {
    for &batch in &args.batch {
        bench_conv_at(gpu, args, batch)?;
    }
    Ok(())
}

fn bench_conv_at(gpu: &Gpu, args: &BenchArgs, batch: usize) -> Result<()> {
    if !args.json {
        println!("conv layers on {} (batch {batch}, {} reps per case; whole passes: im2col/col2im/transposes + the matmul)", gpu.adapter_name(), args.reps);
        println!(
            "{:<8} {:<16} {:<7} {:<28} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12}",
            "model", "layer", "pass", "shape", "MFLOP", "tiled", "vec4", "subgrp", "wgen", "matmul share"
        );
    }
    let families = [MatmulImpl::Tiled, MatmulImpl::Vec4, MatmulImpl::Subgroup].map(|f| gpu.with_matmul(f));
    let used = families.iter().position(|f| f.matmul == gpu.matmul).unwrap_or(0);
    for (model, spec) in crate::models::conv_layers() {
        let shape = spec.conv_shape().expect("conv layers");
        let transposed = matches!(spec.kind, crate::models::layers::LayerKind::ConvTranspose2d(_));
        let operands = ConvOperands::new(gpu, &spec.name, shape, transposed, batch)?;
        let flops = operands.flops() as f64;
        let passes = families.each_ref().map(|f| operands.passes(f));
        for (i, pass) in ["forward", "dX", "dW"].into_iter().enumerate() {
            let rate = |launches: &[Launch]| flops / time_launches(gpu, &launches.iter().collect::<Vec<_>>(), args.reps as usize).0.as_secs_f64() * 1e-9;
            let kernels = |f: usize| passes[f][i].iter().map(|l| l.kernel).collect::<Vec<_>>();
            let tiled = rate(&passes[0][i]);
            let vec4 = (kernels(1) != kernels(0)).then(|| rate(&passes[1][i]));
            let subgroup = (kernels(2) != kernels(1) && kernels(2) != kernels(0)).then(|| rate(&passes[2][i]));
            let rates = [Some(tiled), vec4, subgroup];
            let wgen = (0..=used).rev().find_map(|f| rates[f]).unwrap_or(tiled);
            let matmul: Vec<&Launch> = passes[used][i].iter().filter(|l| format!("{:?}", l.kernel).starts_with("Matmul")).collect();
            let matmul_rate = flops / time_launches(gpu, &matmul, args.reps as usize).0.as_secs_f64() * 1e-9;
            let case = ConvCase {
                case: "conv",
                model,
                layer: spec.name.clone(),
                pass,
                batch,
                shape: format!("{}{shape}", if transposed { "T " } else { "" }),
                mflop: flops / 1e6,
                tiled_gflops: tiled,
                vec4_gflops: vec4,
                subgroup_gflops: subgroup,
                wgen_gflops: wgen,
                matmul_share: (wgen / matmul_rate).min(1.0),
                adapter: gpu.adapter_name(),
            };
            if args.json {
                println!("{}", serde_json::to_string(&case)?);
            } else {
                let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
                println!(
                    "{:<8} {:<16} {:<7} {:<28} {:>7.1} {:>7.2} {:>7} {:>7} {:>7.2} {:>11.0}%",
                    case.model, case.layer, case.pass, case.shape, case.mflop, case.tiled_gflops, opt(case.vec4_gflops),
                    opt(case.subgroup_gflops), case.wgen_gflops, 100.0 * case.matmul_share
                );
            }
        }
    }
    Ok(())
}

/// The performance issue's lavapipe goal for every layer shape and layout.
const GOAL_GFLOPS: f64 = 15.0;

fn bench_kernels(gpu: &Gpu, args: &BenchArgs) -> Result<()> {
    if !args.json {
        println!("matmul on {} ({} reps per case; wgen trains with {:?} and its fallbacks)", gpu.adapter_name(), args.reps, gpu.matmul);
        println!(
            "{:<6} {:<20} {:<7} {:>5} {:<17} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10} {:>10}",
            "model", "layer", "layout", "batch", "C = A·B", "tiled", "vec4", "subgrp", "naive", "wgen", "wgen/tiled", "wgen/naive"
        );
    }
    let mut over_tiled = Vec::new();
    let mut over_naive = Vec::new();
    let mut slowest: Option<Case> = None;
    // (cases at the goal, cases, the largest case in MFLOP that falls short)
    let mut goal = (0usize, 0usize, 0.0f64);
    for &batch in &args.batch {
        for (model, layer, inp, out) in linear_layers() {
            for case in measure_layer(gpu, model, &layer, batch, inp, out, args.reps as usize)? {
                over_tiled.push(case.wgen_gflops / case.tiled_gflops);
                over_naive.push(case.wgen_gflops / case.naive_gflops);
                if args.json {
                    println!("{}", serde_json::to_string(&case)?);
                } else {
                    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
                    println!(
                        "{:<6} {:<20} {:<7} {:>5} {:<17} {:>7.2} {:>7} {:>7} {:>7.2} {:>7.2} {:>9.1}× {:>9.1}×",
                        case.model, case.layer, case.layout, case.batch, case.shape, case.tiled_gflops, opt(case.vec4_gflops),
                        opt(case.subgroup_gflops), case.naive_gflops, case.wgen_gflops, case.wgen_gflops / case.tiled_gflops,
                        case.wgen_gflops / case.naive_gflops
                    );
                }
                goal.1 += 1;
                if case.wgen_gflops >= GOAL_GFLOPS {
                    goal.0 += 1;
                } else {
                    goal.2 = goal.2.max(case.mflop);
                }
                if slowest.as_ref().is_none_or(|s| case.wgen_gflops < s.wgen_gflops) {
                    slowest = Some(case);
                }
            }
        }
    }
    let geo = |r: &[f64]| (r.iter().map(|x| x.ln()).sum::<f64>() / r.len().max(1) as f64).exp();
    if !args.json {
        println!("geometric means of wgen's kernels: {:.2}× the tiled kernel, {:.2}× the naive one", geo(&over_tiled), geo(&over_naive));
        println!(
            "cases at {GOAL_GFLOPS} GF/s or more: {} of {}{}",
            goal.0,
            goal.1,
            if goal.0 < goal.1 { format!("; every case above {:.1} MFLOP reaches it", goal.2) } else { String::new() }
        );
        if let Some(s) = slowest {
            println!("slowest case for wgen: {} {} {} batch {} ({}) at {:.2} GF/s", s.model, s.layer, s.layout, s.batch, s.shape, s.wgen_gflops);
        }
    }
    Ok(())
}

fn measure_layer(gpu: &Gpu, model: &'static str, layer: &str, batch: usize, inp: usize, out: usize, reps: usize) -> Result<Vec<Case>> {
    let operands = LayerOperands::new(gpu, layer, batch, inp, out)?;
    let families = [MatmulImpl::Tiled, MatmulImpl::Vec4, MatmulImpl::Subgroup];
    let launches = families.map(|f| operands.launches(gpu, f));
    let naive = operands.naive(gpu);
    let used = families.iter().position(|&f| f == gpu.matmul).unwrap_or(0);
    Ok(["forward", "dX", "dW"]
        .into_iter()
        .zip(operands.shapes())
        .enumerate()
        .map(|(i, (layout, shape))| {
            let [tiled, vec4, subgroup] = [&launches[0][i], &launches[1][i], &launches[2][i]];
            let flops = tiled.flops as f64;
            let rate = |launch: &Launch| flops / time_launches(gpu, &[launch], reps).0.as_secs_f64() * 1e-9;
            let (t, clock) = time_launches(gpu, &[tiled], reps);
            let tiled_rate = flops / t.as_secs_f64() * 1e-9;
            // A family is timed only where it runs its own kernel rather than a fallback.
            let vec4_rate = (vec4.kernel != tiled.kernel).then(|| rate(vec4));
            let subgroup_rate = (subgroup.kernel != vec4.kernel && subgroup.kernel != tiled.kernel).then(|| rate(subgroup));
            let rates = [Some(tiled_rate), vec4_rate, subgroup_rate];
            // wgen's own choice is the last family at or below it that runs its own kernel.
            let wgen = (0..=used).rev().find_map(|f| rates[f]).unwrap_or(tiled_rate);
            Case {
                case: "matmul",
                model,
                layer: layer.to_string(),
                layout,
                batch,
                shape,
                mflop: flops * 1e-6,
                tiled_gflops: tiled_rate,
                vec4_gflops: vec4_rate,
                subgroup_gflops: subgroup_rate,
                naive_gflops: rate(&naive[i]),
                wgen_kernel: launches[used][i].kernel,
                wgen_gflops: wgen,
                clock,
                adapter: gpu.adapter_name(),
            }
        })
        .collect())
}
