//! A whole training step on the GPU against its CPU twin (llm.c style): the same weights, batch
//! and noise in; the same loss, gradients and updated weights out.

mod common;

use common::{assert_close, gpu, read};
use wgen::data::{self, DeviceSplit};
use wgen::gpu::Tensor;
use wgen::models::vae::{Vae, VaeConfig, VaeGraph, METRIC_SLOTS, TRAIN_KL, TRAIN_RECON};
use wgen::nn::{AdamConfig, Step, StepBuffer};
use wgen::reference as cpu;
use wgen::train::submit_steps;

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn vae_steps_match_cpu_reference_loss_gradients_and_weights() {
    let g = gpu();
    let dataset = data::load(None).unwrap();
    let split = DeviceSplit::upload(g, "train", &dataset.train).unwrap();
    let cfg = VaeConfig::default();
    let (layout, _, values, state) = Vae::initial(&cfg, 0);
    let vae = Vae::new(g, &cfg, &values, &state).unwrap();
    let rows = 24;
    let graph = VaeGraph::new(g, &vae, rows, "vae").unwrap();
    let metrics = Tensor::zeros(g, "metrics", &[METRIC_SLOTS]).unwrap();
    let steps = StepBuffer::new(g, "test", 1);
    let opt = AdamConfig::new(1e-3, 0.9, 0.999);
    let program = graph.train_program(g, &vae, &split, &steps.uniform, 7, &metrics, &opt);

    let mut p = widen(&values);
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    for t in 1..=3u32 {
        metrics.write(g, &[0.0; METRIC_SLOTS]);
        let (bc1, bc2) = opt.bias_corrections(t);
        let step = Step { t, rng_step: t - 1, batch_start: (t as usize - 1) as u32 * rows as u32, adam_bc1: bc1, adam_bc2: bc2, ..Step::default() };
        submit_steps(g, &program, &steps, &[step]);
        g.wait();
        // The batch and noise as the GPU drew them are the reference's inputs.
        let (x, eps) = (widen(&read(&graph.x)), widen(&read(&graph.eps)));
        let want = cpu::vae_step(&cfg, &layout, &mut p, &mut m, &mut v, &x, &eps, rows, t, &opt);
        let got = read(&metrics);
        let what = format!("step {t}");
        // Tolerances, from the largest differences seen on lavapipe times ~5-10: the loss parts
        // 1e-5 relative / 1e-5 absolute, gradients 2e-6 absolute + 1e-4 relative, weights 1e-5
        // absolute (1% of the learning rate: Adam's step normalises tiny gradients, so f32
        // noise in them moves a weight by a fraction of lr).
        assert_close(&format!("{what} recon"), &got[TRAIN_RECON..=TRAIN_RECON], &[want.recon], 0.0, 1e-5);
        assert_close(&format!("{what} kl"), &got[TRAIN_KL..=TRAIN_KL], &[want.kl], 1e-5, 1e-4);
        assert_close(&format!("{what} gradients"), &read(&vae.params.grads), &want.grads, 2e-6, 1e-4);
        assert_close(&format!("{what} weights"), &read(&vae.params.values), &p, 1e-5, 0.0);
    }
}
