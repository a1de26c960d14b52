//! The profiler: its arithmetic against hand counts, its trace, and that timing a step does not
//! change what the step computes.

mod common;

use common::{gpu, small_mnist, temp_dir, upload, zeros};
use wgen::data::{self, DeviceSplit};
use wgen::gpu::{profile, Track, View};
use wgen::nn::{self, submit_steps, Activation, AdamConfig, StagedSteps, StepBuffer};
use wgen::train::{ModelKind, ModelRun, TrainConfig};

#[test]
fn kernel_costs_match_hand_counts() {
    let g = gpu();
    // Forward 64x256·256x512 with bias: 2·64·512·256 FLOPs; A, B, C and the bias once each.
    let x = zeros("x", &[64, 256]);
    let wb = zeros("wb", &[512 * 256 + 512]);
    let y = zeros("y", &[64, 512]);
    let w = View::new(&wb.buffer, 0, 512, 256);
    let fwd = nn::matmul_forward(g, "fc", x.view(), w, Some(512 * 256), y.view(), Activation::Relu);
    assert_eq!((fwd.flops, fwd.bytes), (16_777_216, 4 * (16_384 + 131_072 + 32_768 + 512)));
    assert_eq!(fwd.detail, "64x256·256x512 relu");
    // Backward input through ReLU: also reads the activation, 64x256.
    let dy = zeros("dy", &[64, 512]);
    let dx = zeros("dx", &[64, 256]);
    let bwd = nn::matmul_backward_input(g, "fc", dy.view(), w, dx.view(), Some((x.view(), Activation::Relu)));
    assert_eq!((bwd.flops, bwd.bytes), (16_777_216, 4 * (32_768 + 131_072 + 16_384 + 16_384)));
    // Backward weight with the bias column: dW 512x256 and db 512 written.
    let dw = View::new(&wb.buffer, 0, 512, 256);
    let bw = nn::matmul_backward_weight(g, "fc", dy.view(), x.view(), dw, Some(512 * 256), false);
    assert_eq!((bw.flops, bw.bytes), (16_777_216, 4 * (32_768 + 16_384 + 131_072 + 512)));
    // ... and accumulating also reads dW and db.
    let acc = nn::matmul_backward_weight(g, "fc", dy.view(), x.view(), dw, Some(512 * 256), true);
    assert_eq!(acc.bytes, bw.bytes + 4 * (131_072 + 512));
    // Adam over 1000 parameters: 13 FLOPs and 7 floats each.
    let p = zeros("p", &[1000]);
    let steps = StepBuffer::new(g, "t", 1);
    let adam = nn::adam(g, "adam", &AdamConfig::new(1e-3, 0.9, 0.999), &steps.uniform, 0..1000, &p.buffer, &p.buffer, &p.buffer, &p.buffer);
    assert_eq!((adam.flops, adam.bytes), (13_000, 28_000));
    // BCE on 128x784 logits against a target tensor: 12 FLOPs, 3 floats per element, 1 per row.
    let logits = upload("l", &[128, 784], &vec![0.0; 128 * 784]);
    let rows = zeros("r", &[128]);
    let grad = zeros("g", &[128, 784]);
    let bce = nn::bce_logits(g, "bce", logits.view(), Ok(logits.view()), 1.0, grad.view(), rows.view());
    assert_eq!((bce.flops, bce.bytes), (12 * 100_352, 4 * (3 * 100_352 + 128)));
}

fn small_gan(dir: &std::path::Path) -> (TrainConfig, ModelRun, usize) {
    small_mnist(&dir.join("data"), 96, 32);
    let dataset = data::load(Some(&dir.join("data")), &Default::default(), &mut |_, _| {}).unwrap();
    let (train, test) = (DeviceSplit::upload(gpu(), "train", &dataset.train).unwrap(), DeviceSplit::upload(gpu(), "test", &dataset.test).unwrap());
    let mut cfg = TrainConfig::defaults(ModelKind::Gan);
    cfg.batch = 16;
    cfg.steps_per_submit = 8;
    (cfg.clone(), ModelRun::new(gpu(), &cfg, &train, &test).unwrap(), dataset.train.count / 16)
}

#[test]
fn trace_is_json_with_one_gpu_event_per_kernel_call() {
    let dir = temp_dir("trace");
    let (cfg, run, epoch) = small_gan(&dir);
    let steps = cfg.steps(0, 3, epoch);
    let report = profile(gpu(), run.program(), &StagedSteps { buffer: run.steps(), steps: &steps });
    let text = serde_json::to_string(&report.trace_json()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let kernel_events = events.iter().filter(|e| e["ph"] == "X" && e["tid"] == 1).count();
    let calls: u64 = report.rows.iter().map(|r| r.calls).sum();
    assert_eq!(kernel_events, 3 * report.dispatches_per_step, "one event per kernel call");
    assert_eq!(calls as usize, kernel_events);
    assert!(events.iter().any(|e| e["ph"] == "X" && e["tid"] == 2), "a host track");
    assert!(report.events.iter().filter(|e| e.track == Track::Gpu).all(|e| e.dur_ns >= 0.0));
    let ordered: Vec<f64> = report.rows.iter().map(|r| r.total_ns).collect();
    assert!(ordered.windows(2).all(|w| w[0] >= w[1]), "rows sorted by total time");
}

#[test]
fn profiling_computes_exactly_what_training_computes() {
    let dir = temp_dir("profile-same");
    let (cfg, timed, epoch) = small_gan(&dir);
    let (_, plain, _) = small_gan(&dir);
    let steps = cfg.steps(0, 5, epoch);
    profile(gpu(), timed.program(), &StagedSteps { buffer: timed.steps(), steps: &steps });
    submit_steps(gpu(), plain.program(), plain.steps(), &steps);
    gpu().wait();
    let params = |run: &ModelRun| run.parameters().values.read(gpu()).unwrap();
    assert!(params(&timed) == params(&plain), "profiled steps changed the weights");
}
