//! Training end to end through the library: the loss falls, and runs repeat bit for bit.

mod common;

use common::{gpu, small_mnist, temp_dir};
use wgen::train::{train, ModelKind, Schedule, Settings, Silent, TrainConfig};

fn config(model: ModelKind, data: &std::path::Path, out: std::path::PathBuf, epochs: u32, batch: usize) -> TrainConfig {
    TrainConfig { epochs, batch, seed: 5, data: Some(data.to_path_buf()), out, checkpoint_every: 0, steps_per_submit: 7, ..TrainConfig::defaults(model) }
}

fn value(record: &serde_json::Map<String, serde_json::Value>, key: &str) -> f64 {
    record[key].as_f64().unwrap()
}

#[test]
fn a_few_hundred_vae_steps_bring_the_test_loss_well_down() {
    let dir = temp_dir("vae-loss");
    small_mnist(&dir.join("data"), 3000, 500);
    // 3000 / 32 = 93 steps an epoch, 279 in all.
    let run = train(gpu(), &config(ModelKind::Vae, &dir.join("data"), dir.join("run"), 3, 32), &mut Silent).unwrap();
    let elbo: Vec<f64> = run.records.iter().map(|r| value(r, "test_neg_elbo")).collect();
    // Untrained, the decoder's logits are near 0: 784·ln 2 ≈ 543 nats per image.
    assert!(elbo[2] < 0.4 * 543.0, "test negative ELBO per epoch {elbo:?}");
    assert!(elbo[2] < elbo[0], "no progress after the first epoch: {elbo:?}");
    for file in ["config.json", "metrics.jsonl", "model.safetensors", "samples/epoch-003.png", "samples/recon-epoch-003.png"] {
        assert!(dir.join("run").join(file).is_file(), "{file} missing");
    }
}

/// The records without their timings, which differ run to run.
fn losses(run: &wgen::train::RunSummary) -> Vec<String> {
    run.records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove("img_per_s");
            r.remove("seconds");
            serde_json::Value::Object(r).to_string()
        })
        .collect()
}

/// The DCGAN's run sums its first conv layer's weight gradient in chunks (split-K, reduced in
/// a fixed order): the repeat covers that wherever the adapter runs the implicit products, and
/// on the vec4 family's im2col path everywhere.
#[test]
fn same_seed_same_adapter_repeats_gan_vae_and_dcgan_runs_bit_for_bit() {
    let dir = temp_dir("repeat");
    // 4 steps an epoch of 32: two epochs still cross an epoch's reshuffle.
    small_mnist(&dir.join("data"), 128, 100);
    let conv1 = wgen::nn::ConvShape::conv2d(1, 64, 28, 28, 4, 2, 1);
    let plan = wgen::nn::ConvPlan::for_layer(gpu(), &conv1, 32);
    if gpu().subgroup_matmul {
        assert!(plan.weight == wgen::nn::ConvPath::Implicit && plan.splits > 1, "the DCGAN's conv1 weight gradient is split: {plan:?}");
    }
    let vec4 = gpu().with_matmul(wgen::gpu::MatmulImpl::Vec4);
    let plan = wgen::nn::ConvPlan::for_layer(&vec4, &conv1, 32);
    assert!(plan.weight == wgen::nn::ConvPath::Im2col && plan.splits > 1, "vec4 splits conv1's weight gradient: {plan:?}");
    for (model, batch, g) in [(ModelKind::Gan, 32, gpu()), (ModelKind::Vae, 64, gpu()), (ModelKind::Dcgan, 32, gpu()), (ModelKind::Dcgan, 32, &vec4)] {
        let name = format!("{model:?}-{:?}", g.matmul);
        let (a_dir, b_dir) = (dir.join(format!("{name}-a")), dir.join(format!("{name}-b")));
        let a = train(g, &config(model, &dir.join("data"), a_dir.clone(), 2, batch), &mut Silent).unwrap();
        let b = train(g, &config(model, &dir.join("data"), b_dir.clone(), 2, batch), &mut Silent).unwrap();
        assert_eq!(losses(&a), losses(&b), "{name}: losses differ between identical runs");
        // Tensors, not file bytes: the header's metadata map has no fixed key order.
        let weights = |run: &std::path::Path| {
            let bytes = std::fs::read(run.join("model.safetensors")).unwrap();
            let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let mut tensors: Vec<(String, Vec<u8>)> = file.tensors().into_iter().map(|(n, v)| (n, v.data().to_vec())).collect();
            tensors.sort();
            tensors
        };
        assert!(weights(&a_dir) == weights(&b_dir), "{name}: final weights differ between identical runs");
    }
}

#[test]
fn a_linear_schedule_falls_from_the_full_rate_to_one_step_above_zero_and_constant_stays() {
    // 3 epochs of 4 steps: factors 1, 11/12, …, 1/12 over the run, whichever submit they fall in.
    let cfg = TrainConfig { epochs: 3, lr_schedule: Schedule::Linear, ..TrainConfig::defaults(ModelKind::Classifier) };
    let factors: Vec<f32> = cfg.steps(0, 5, 4).iter().chain(&cfg.steps(5, 7, 4)).map(|s| s.lr_scale).collect();
    let want: Vec<f32> = (0..12).map(|i| (1.0 - f64::from(i) / 12.0) as f32).collect();
    assert_eq!(factors, want);
    assert_eq!(TrainConfig::defaults(ModelKind::Classifier).lr_schedule, Schedule::Linear);
    let vae = TrainConfig::defaults(ModelKind::Vae);
    assert_eq!(vae.lr_schedule, Schedule::Constant);
    assert!(vae.steps(0, 9, 4).iter().all(|s| s.lr_scale == 1.0));
}

#[test]
fn each_conditional_vae_gets_the_latent_size_its_study_chose_and_the_classifier_refuses_conditioning() {
    let built = |model, conditional| Settings { model: Some(model), conditional: Some(conditional), ..Settings::default() }.build();
    let latent = |model, conditional| built(model, conditional).unwrap().vae.unwrap().latent;
    assert_eq!((latent(ModelKind::Vae, true), latent(ModelKind::ConvVae, true)), (2, 2));
    assert_eq!((latent(ModelKind::Vae, false), latent(ModelKind::ConvVae, false)), (32, 32));
    let refused = built(ModelKind::Classifier, true).unwrap_err().to_string();
    assert!(refused.contains("a classifier already learns from the labels"), "{refused}");
}

#[test]
fn each_gan_gets_the_rate_its_study_chose_and_a_flag_or_a_refusal_overrides_it() {
    let built = |model, conditional, lr: Option<f32>| Settings { model: Some(model), conditional: Some(conditional), lr, ..Settings::default() }.build();
    let rates = |cfg: TrainConfig| (cfg.adam.lr, cfg.gan.as_ref().unwrap().adam(&cfg.adam).1.lr);
    // (G's rate, D's rate): the MLP GAN both at 6e-4, conditioned both at 2e-4, the DCGAN 4e-4 / 2e-5.
    assert_eq!(rates(built(ModelKind::Gan, false, None).unwrap()), (6e-4, 6e-4));
    assert_eq!(rates(built(ModelKind::Gan, true, None).unwrap()), (2e-4, 2e-4));
    assert_eq!(rates(built(ModelKind::Dcgan, false, None).unwrap()), (4e-4, 2e-5));
    assert_eq!(rates(built(ModelKind::Gan, true, Some(3e-4)).unwrap()), (3e-4, 3e-4));
    // The conditional DCGAN keeps the DCGAN's rates.
    assert_eq!(rates(built(ModelKind::Dcgan, true, None).unwrap()), (4e-4, 2e-5));
    let refused = built(ModelKind::Gan, false, Some(-1.0)).unwrap_err().to_string();
    assert!(refused.contains("--lr must be a positive number"), "{refused}");
}
