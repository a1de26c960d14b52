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
use crate::nn::{ConvOperands, ConvPath, ConvPlan, LayerOperands};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value_t = BenchWhat::Quick)]
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
    /// Training throughput of each model at its default batch with the kernels wgen picks
    /// here: a few seconds a model.
    Quick,
    /// Training, then the matmul kernels, then the conv layers: every variant (many minutes on
    /// a CPU adapter).
    All,
    /// Training steps per second of every model at its default and larger batches, with each
    /// matmul family and, for the conv models, each convolution path.
    Train,
    /// Matmul GFLOP/s on the models' layer shapes.
    Kernels,
    /// Conv layers' GFLOP/s on the conv models' shapes: each pass on the im2col path with each
    /// matmul family and on the implicit path, beside a plain matmul of the same shape.
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
    /// The conv models' convolution path where the family offers a choice.
    conv: Option<ConvPath>,
    /// True for the kernels wgen trains with on this adapter.
    default: bool,
    steps: usize,
    steps_per_s: f64,
    img_per_s: f64,
    /// img/s over the first variant's in the same run (the tiled family's, where all run).
    over_tiled: f64,
    dispatches_per_step: usize,
    adapter: String,
}

/// The kernels a training case runs with: a matmul family and, for a conv model on the
/// subgroup family, the convolution path.
fn variants(gpu: &Gpu, model: ModelKind, all: bool) -> Vec<(MatmulImpl, Option<ConvPath>, Gpu)> {
    let conv_model = matches!(model, ModelKind::ConvVae | ModelKind::Dcgan);
    let mut out = Vec::new();
    for family in if all { gpu.matmul_families() } else { vec![gpu.matmul] } {
        let fgpu = gpu.with_matmul(family);
        if conv_model && family == MatmulImpl::Subgroup && gpu.subgroup_matmul {
            for implicit in if all { vec![false, true] } else { vec![gpu.implicit_conv] } {
                let path = if implicit { ConvPath::Implicit } else { ConvPath::Im2col };
                out.push((family, Some(path), fgpu.with_conv(implicit)));
            }
        } else {
            out.push((family, None, fgpu));
        }
    }
    out
}

/// Each model at each batch, once per variant of its kernels (all of them, or with `quick` the
/// one wgen uses at the default batch), interleaved case by case so drift in the machine's
/// speed hits them alike.
fn bench_train(gpu: &Gpu, args: &BenchArgs, quick: bool) -> Result<()> {
    let dataset = data::builtin();
    let train = DeviceSplit::upload(gpu, "train", &dataset.train)?;
    let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
    let cases: Vec<(ModelKind, usize)> = TRAIN_CASES
        .iter()
        .copied()
        .filter(|(m, b)| (args.models.is_empty() || args.models.contains(m)) && (!quick || *b == TrainConfig::defaults(*m).batch))
        .collect();
    if !args.json {
        let runs: usize = cases.iter().map(|&(m, _)| variants(gpu, m, !quick).len()).sum();
        // Each run: its kernels compiled, two warm-up steps, then the timed seconds.
        println!(
            "training steps on {} (built-in data; {runs} runs of about {} s, some {:.0} s in all; * marks the kernels wgen uses{})",
            gpu.adapter_name(),
            args.seconds,
            runs as f64 * (args.seconds + 3.0),
            if quick { "; `wgen bench all` times every variant" } else { "" }
        );
        println!("{:<8} {:>6} {:<18} {:>7} {:>9} {:>9} {:>8} {:>11}", "model", "batch", "kernels", "steps", "steps/s", "img/s", "× first", "dispatches");
    }
    for (model, batch) in cases {
        let mut cfg = TrainConfig::defaults(model);
        cfg.batch = batch;
        cfg.steps_per_submit = 16;
        let epoch_steps = dataset.train.count / batch;
        let mut first_rate = None;
        for (family, conv, fgpu) in variants(gpu, model, !quick) {
            let run = ModelRun::new(&fgpu, &cfg, &train, &test)?;
            // Two warm-up steps, then submits of 16 steps until the time is up.
            submit_steps(&fgpu, run.program(), run.steps(), &cfg.steps(0, 2, epoch_steps));
            fgpu.wait();
            let start = Instant::now();
            let mut done = 0usize;
            while start.elapsed().as_secs_f64() < args.seconds || done == 0 {
                submit_steps(&fgpu, run.program(), run.steps(), &cfg.steps(2 + done as u32, 16, epoch_steps));
                fgpu.wait();
                done += 16;
            }
            let per_s = done as f64 / start.elapsed().as_secs_f64();
            let img_per_s = per_s * batch as f64;
            let first = *first_rate.get_or_insert(img_per_s);
            let case = TrainCase {
                case: "train",
                model,
                batch,
                matmul: family,
                conv,
                default: family == gpu.matmul && conv.is_none_or(|c| (c == ConvPath::Implicit) == gpu.implicit_conv),
                steps: done,
                steps_per_s: (per_s * 10.0).round() / 10.0,
                img_per_s: img_per_s.round(),
                over_tiled: (img_per_s / first * 100.0).round() / 100.0,
                dispatches_per_step: run.program().dispatch_count(),
                adapter: gpu.adapter_name(),
            };
            if args.json {
                println!("{}", serde_json::to_string(&case)?);
            } else {
                let conv = conv.map_or(String::new(), |c| format!("+{c:?}").to_lowercase());
                let name = format!("{}{conv}{}", format!("{family:?}").to_lowercase(), if case.default { "*" } else { "" });
                println!(
                    "{:<8} {:>6} {:<18} {:>7} {:>9.1} {:>9.0} {:>7.2}× {:>11}",
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
    if matches!(args.what, BenchWhat::Quick | BenchWhat::All | BenchWhat::Train) {
        bench_train(gpu, args, args.what == BenchWhat::Quick)?;
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
    /// The whole pass through im2col/col2im and each matmul family; None where the family
    /// falls back to another for every matmul of the pass.
    tiled_gflops: f64,
    vec4_gflops: Option<f64>,
    subgroup_gflops: Option<f64>,
    /// The implicit product (shaders/conv_subgroup.wgsl), where the adapter runs it.
    implicit_gflops: Option<f64>,
    /// The path training takes for this pass, and its rate (the median of three, alternated
    /// with the plain matmul's).
    chosen: ConvPath,
    wgen_gflops: f64,
    /// The plain matmul of the same product shape in wgen's family (the im2col path's matmul
    /// alone): what a convolution would reach if gathering cost nothing. The median of three.
    matmul_gflops: f64,
    /// The weight gradient's chunks (1 elsewhere).
    splits: usize,
    adapter: String,
}

/// Each conv layer's forward, dX and dW passes timed whole, on the im2col path with each
/// matmul family and on the implicit path, beside the plain matmul of the same shape.
fn bench_conv(gpu: &Gpu, args: &BenchArgs) -> Result<()> {
    for &batch in &args.batch {
        bench_conv_at(gpu, args, batch)?;
    }
    Ok(())
}

fn bench_conv_at(gpu: &Gpu, args: &BenchArgs, batch: usize) -> Result<()> {
    if !args.json {
        println!("conv layers on {} (batch {batch}, {} reps per case; GFLOP/s of whole passes, * the path training takes)", gpu.adapter_name(), args.reps);
        println!(
            "{:<8} {:<18} {:<7} {:<28} {:>6} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7}",
            "model", "layer", "pass", "shape", "MFLOP", "tiled", "vec4", "subgrp", "implicit", "matmul", "wgen", "/matmul"
        );
    }
    let families = [MatmulImpl::Tiled, MatmulImpl::Vec4, MatmulImpl::Subgroup].map(|f| gpu.with_matmul(f));
    let used = families.iter().position(|f| f.matmul == gpu.matmul).unwrap_or(0);
    let reps = args.reps as usize;
    for (model, spec) in crate::models::conv_layers() {
        let shape = spec.conv_shape().expect("conv layers");
        let transposed = matches!(spec.kind, crate::models::layers::LayerKind::ConvTranspose2d(_));
        let operands = ConvOperands::new(gpu, &spec.name, shape, transposed, batch)?;
        let flops = operands.flops() as f64;
        let plan = operands.plan(gpu)?;
        let im2col = families.each_ref().map(|f| operands.passes(f, ConvPlan::im2col(f, &shape, batch))).into_iter().collect::<Result<Vec<_>, _>>()?;
        let implicit_plan = ConvPlan { output: ConvPath::Implicit, input: ConvPath::Implicit, weight: ConvPath::Implicit, ..plan };
        let implicit = gpu.subgroup_matmul.then(|| operands.passes(&families[2], implicit_plan)).transpose()?;
        // A ConvTranspose2d's forward is its Conv2d's input product, its dX the output one.
        let paths = if transposed { [plan.input, plan.output, plan.weight] } else { [plan.output, plan.input, plan.weight] };
        let trained = operands.passes(gpu, plan)?;
        for (i, pass) in ["forward", "dX", "dW"].into_iter().enumerate() {
            let rate_of = |launches: &[&Launch]| flops / time_launches(gpu, launches, reps).0.as_secs_f64() * 1e-9;
            let rate = |launches: &[Launch]| rate_of(&launches.iter().collect::<Vec<_>>());
            let kernels = |f: usize| im2col[f].launches[i].iter().map(|l| l.kernel).collect::<Vec<_>>();
            let tiled = rate(&im2col[0].launches[i]);
            let vec4 = (kernels(1) != kernels(0)).then(|| rate(&im2col[1].launches[i]));
            let subgroup = (kernels(2) != kernels(1) && kernels(2) != kernels(0)).then(|| rate(&im2col[2].launches[i]));
            let implicit_rate = implicit.as_ref().map(|p| rate(&p.launches[i]));
            let matmul: Vec<&Launch> = im2col[used].launches[i].iter().filter(|l| format!("{:?}", l.kernel).starts_with("Matmul")).collect();
            // The pass as training runs it and the plain matmul, alternated three times,
            // medians: the machine's speed drifts between the cases above.
            let (mut wgen, mut plain) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                wgen.push(rate(&trained.launches[i]));
                plain.push(rate_of(&matmul));
            }
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
                implicit_gflops: implicit_rate,
                chosen: paths[i],
                wgen_gflops: median(wgen),
                matmul_gflops: median(plain),
                splits: if i == 2 { plan.weight_chunks(batch * shape.pixels()) } else { 1 },
                adapter: gpu.adapter_name(),
            };
            if args.json {
                println!("{}", serde_json::to_string(&case)?);
            } else {
                print_conv_case(&case, used);
            }
        }
    }
    Ok(())
}

fn print_conv_case(case: &ConvCase, used: usize) {
    let cell = |v: Option<f64>, chosen: bool| v.map_or("-".to_string(), |v| format!("{v:.2}{}", if chosen { "*" } else { "" }));
    let on_im2col = case.chosen == ConvPath::Im2col;
    println!(
        "{:<8} {:<18} {:<7} {:<28} {:>6.1} {:>7} {:>7} {:>7} {:>8} {:>7.2} {:>7.2} {:>6.0}%",
        case.model,
        case.layer,
        case.pass,
        case.shape,
        case.mflop,
        cell(Some(case.tiled_gflops), on_im2col && used == 0),
        cell(case.vec4_gflops, on_im2col && used == 1),
        cell(case.subgroup_gflops, on_im2col && used == 2),
        cell(case.implicit_gflops, !on_im2col),
        case.matmul_gflops,
        case.wgen_gflops,
        100.0 * case.wgen_gflops / case.matmul_gflops
    );
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

/// The middle value of an odd count.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
