//! `wgen bench kernels`: matmul throughput on the two models' real layer shapes, the tiled
//! kernel next to the naive one-thread-per-output baseline, timed in the same run.

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::gpu::{time_launches, Gpu, Launch, Tensor, View};
use crate::nn::{self, Activation};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value_t = BenchWhat::Kernels)]
    what: BenchWhat,
    /// Print one JSON object per case instead of a table.
    #[arg(long)]
    json: bool,
    /// Repetitions per case, recorded into one compute pass.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    reps: u32,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 128])]
    batch: Vec<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BenchWhat {
    Kernels,
}

/// (model, layer, in, out) of every Linear layer of the two models; the VAE's mu and logvar
/// heads run as one 128 → 64 matmul.
pub const LAYER_SHAPES: &[(&str, &str, usize, usize)] = &[
    ("gan", "generator.fc1", 100, 256),
    ("gan", "generator.fc2", 256, 512),
    ("gan", "generator.fc3", 512, 1024),
    ("gan", "generator.fc4", 1024, 784),
    ("gan", "discriminator.fc1", 784, 512),
    ("gan", "discriminator.fc2", 512, 256),
    ("gan", "discriminator.fc3", 256, 1),
    ("vae", "encoder.fc1", 784, 256),
    ("vae", "encoder.fc2", 256, 128),
    ("vae", "encoder.mu|logvar", 128, 64),
    ("vae", "decoder.fc1", 32, 128),
    ("vae", "decoder.fc2", 128, 256),
    ("vae", "decoder.out", 256, 784),
];

#[derive(serde::Serialize)]
struct Case {
    model: &'static str,
    layer: &'static str,
    layout: &'static str,
    batch: usize,
    shape: String,
    tiled_gflops: f64,
    naive_gflops: f64,
    tiled_us: f64,
    naive_us: f64,
    clock: crate::gpu::Clock,
    adapter: String,
}

pub fn run(gpu: &Gpu, args: &BenchArgs) -> Result<i32> {
    let BenchWhat::Kernels = args.what;
    if !args.json {
        println!("matmul on {} ({} reps per case)", gpu.adapter_name(), args.reps);
        println!("{:<6} {:<20} {:<9} {:>5} {:<18} {:>11} {:>11} {:>7}", "model", "layer", "layout", "batch", "C = A·B", "tiled GF/s", "naive GF/s", "ratio");
    }
    let mut ratios = Vec::new();
    for &batch in &args.batch {
        for &(model, layer, inp, out) in LAYER_SHAPES {
            for case in measure_layer(gpu, model, layer, batch, inp, out, args.reps as usize)? {
                ratios.push(case.tiled_gflops / case.naive_gflops);
                if args.json {
                    println!("{}", serde_json::to_string(&case)?);
                } else {
                    println!(
                        "{:<6} {:<20} {:<9} {:>5} {:<18} {:>11.2} {:>11.2} {:>6.1}×",
                        case.model, case.layer, case.layout, case.batch, case.shape, case.tiled_gflops, case.naive_gflops,
                        case.tiled_gflops / case.naive_gflops
                    );
                }
            }
        }
    }
    if !args.json && !ratios.is_empty() {
        let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        println!("geometric mean speed-up of tiled over naive: {geo:.2}×");
    }
    Ok(0)
}

fn measure_layer(gpu: &Gpu, model: &'static str, layer: &'static str, batch: usize, inp: usize, out: usize, reps: usize) -> Result<Vec<Case>> {
    let fill = |label: &str, shape: &[usize]| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
        Ok(Tensor::from_slice(gpu, label, shape, &values)?)
    };
    let x = fill("bench.x", &[batch, inp])?;
    let wb = fill("bench.weights", &[out * inp + out])?;
    let y = fill("bench.y", &[batch, out])?;
    let dy = fill("bench.dy", &[batch, out])?;
    let dx = fill("bench.dx", &[batch, inp])?;
    let grads = fill("bench.grads", &[out * inp + out])?;
    let w = View { buffer: &wb.buffer, offset: 0, rows: out, cols: inp };
    let dw = View { buffer: &grads.buffer, offset: 0, rows: out, cols: inp };
    let act = Activation::LeakyRelu(0.2);
    let label = format!("bench.{layer}");

    let forward = nn::matmul_forward(gpu, &label, x.view(), w, Some(out * inp), y.view(), act);
    let forward_naive = nn::matmul_naive(gpu, &label, nn::forward_params(&label, x.view(), w, Some(out * inp), y.view(), act), true, &x.buffer, &wb.buffer, &y.buffer);
    let input = nn::matmul_backward_input(gpu, &label, dy.view(), w, dx.view(), Some((x.view(), act)));
    let input_naive = nn::matmul_naive(gpu, &label, nn::backward_input_params(&label, dy.view(), w, dx.view(), None), false, &dy.buffer, &wb.buffer, &dx.buffer);
    let weight = nn::matmul_backward_weight(gpu, &label, dy.view(), x.view(), dw, Some(out * inp), false);
    let weight_naive = nn::matmul_naive(gpu, &label, nn::backward_weight_params(&label, dy.view(), x.view(), dw, None, false), false, &dy.buffer, &x.buffer, &grads.buffer);

    let cases: [(&str, &Launch, &Launch, String); 3] = [
        ("forward", &forward, &forward_naive, format!("{batch}x{inp}·{inp}x{out}")),
        ("dX", &input, &input_naive, format!("{batch}x{out}·{out}x{inp}")),
        ("dW", &weight, &weight_naive, format!("{out}x{batch}·{batch}x{inp}")),
    ];
    Ok(cases
        .into_iter()
        .map(|(layout, tiled, naive, shape)| {
            let (t, clock) = time_launches(gpu, &[tiled], reps);
            let (n, _) = time_launches(gpu, &[naive], reps);
            let flops = tiled.flops as f64;
            Case {
                model,
                layer,
                layout,
                batch,
                shape,
                tiled_gflops: flops / t.as_secs_f64() * 1e-9,
                naive_gflops: flops / n.as_secs_f64() * 1e-9,
                tiled_us: t.as_secs_f64() * 1e6,
                naive_us: n.as_secs_f64() * 1e6,
                clock,
                adapter: gpu.adapter_name(),
            }
        })
        .collect())
}
