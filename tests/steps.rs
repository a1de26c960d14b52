//! A whole training step on the GPU against its CPU twin (llm.c style): the same weights, batch
//! and noise in; the same loss, gradients and updated weights out.

mod common;

use common::{assert_close, gpu, read};
use wgen::data::{self, DeviceSplit, ImageShape};
use wgen::gpu::Tensor;
use wgen::models::vae::{Vae, VaeArch, VaeConfig, VaeGraph, METRIC_SLOTS, TRAIN_KL, TRAIN_RECON};
use wgen::nn::{submit_steps, AdamConfig, Step, StepBuffer};
use wgen::reference as cpu;

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Updated weights within 1e-5 (1% of the learning rate), except those whose gradient was
/// ever below 1e-7 but not zero on both sides (`noisy`, updated here): there Adam's step
/// lr·g/(√v + 1e-8) turns on g's exact value, which for a sum of thousands of terms cancelling
/// to ~1e-9 (a conv weight over a batch; a bias before a batch norm, whose gradient is zero but
/// for rounding) is f32 rounding noise, so such a weight may differ by up to lr a step.
/// `grads` are the reference's and the GPU's.
fn assert_weights_close(what: &str, got: &[f32], want: &[f64], grads: (&[f64], &[f32]), lr: f32, noisy: &mut [bool], step: u32) {
    for ((n, g), gg) in noisy.iter_mut().zip(grads.0).zip(grads.1) {
        *n |= (*g != 0.0 || *gg != 0.0) && g.abs() < 1e-7;
    }
    let (loose, strict): (Vec<usize>, Vec<usize>) = (0..want.len()).partition(|&i| noisy[i]);
    let pick = |idx: &[usize]| -> (Vec<f32>, Vec<f64>) { (idx.iter().map(|&i| got[i]).collect(), idx.iter().map(|&i| want[i]).collect()) };
    let (g, w) = pick(&strict);
    assert_close(what, &g, &w, 1e-5, 0.0);
    let (g, w) = pick(&loose);
    assert_close(&format!("{what} (a gradient in (0, 1e-7))"), &g, &w, 2.0 * f64::from(lr) * f64::from(step), 0.0);
    assert!(loose.len() * 100 < want.len(), "{what}: {} of {} gradients in (0, 1e-7)", loose.len(), want.len());
}

#[test]
fn vae_steps_match_cpu_reference_loss_gradients_and_weights() {
    vae_steps_match_cpu_reference(None, false);
}

#[test]
fn conditional_vae_steps_match_cpu_reference_with_one_hot_labels_in_both_inputs() {
    vae_steps_match_cpu_reference(Some(10), false);
}

#[test]
fn conditional_vae_steps_with_class_prior_means_match_cpu_reference() {
    vae_steps_match_cpu_reference(Some(10), true);
}

#[test]
fn conv_vae_steps_match_cpu_reference_through_convs_flatten_reshape_and_deconvs() {
    vae_steps_match(VaeConfig { arch: VaeArch::Conv, ..VaeConfig::default() });
}

#[test]
fn conv_vae_steps_match_cpu_reference_on_three_channel_12x12_images() {
    vae_steps_match(VaeConfig { arch: VaeArch::Conv, image: ImageShape { channels: 3, side: 12 }, ..VaeConfig::default() });
}

#[test]
fn conditional_conv_vae_steps_match_cpu_reference_with_label_planes_in_conv1_and_one_hot_beside_z() {
    vae_steps_match(VaeConfig { arch: VaeArch::Conv, classes: Some(10), latent: 5, ..VaeConfig::default() });
}

#[test]
fn conditional_conv_vae_steps_with_class_prior_means_match_cpu_reference_on_three_channel_12x12_images() {
    let image = ImageShape { channels: 3, side: 12 };
    vae_steps_match(VaeConfig { arch: VaeArch::Conv, classes: Some(3), class_prior: true, image, ..VaeConfig::default() });
}

#[test]
fn vae_steps_match_cpu_reference_on_three_channel_images_as_rows_of_planes() {
    vae_steps_match(VaeConfig { image: ImageShape { channels: 3, side: 12 }, ..VaeConfig::default() });
}

fn vae_steps_match_cpu_reference(classes: Option<usize>, class_prior: bool) {
    vae_steps_match(VaeConfig { classes, class_prior, ..VaeConfig::default() });
}

/// The built-in digits for MNIST's shape, else colour pictures of `shape`.
fn dataset_of(shape: ImageShape) -> data::Dataset {
    if shape == ImageShape::MNIST {
        return data::builtin();
    }
    let dataset = common::colour_dataset(120, shape.side as u32, 3);
    assert_eq!(dataset.shape(), shape, "the pictures decode to the asked shape");
    dataset
}

fn vae_steps_match(cfg: VaeConfig) {
    let g = gpu();
    let dataset = dataset_of(cfg.image);
    let split = DeviceSplit::upload(g, "train", &dataset.train).unwrap();
    let classes = cfg.classes;
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
    let mut noisy = vec![false; p.len()];
    for t in 1..=3u32 {
        metrics.write(g, &[0.0; METRIC_SLOTS]);
        let (bc1, bc2) = opt.bias_corrections(t);
        let step = Step { t, rng_step: t - 1, batch_start: (t as usize - 1) as u32 * rows as u32, adam_bc1: bc1, adam_bc2: bc2, ..Step::default() };
        submit_steps(g, &program, &steps, &[step]);
        g.wait();
        // The batch and noise as the GPU drew them are the reference's inputs.
        let (x, eps) = (widen(&read(&graph.x)), widen(&read(&graph.eps)));
        let labels: Vec<usize> = graph.conditioning.as_ref().map_or(Vec::new(), |c| read(&c.labels).iter().map(|&l| l as usize).collect());
        if classes.is_some() {
            let start = (t as usize - 1) * rows;
            let truth: Vec<usize> = dataset.train.labels[start..start + rows].iter().map(|&l| usize::from(l)).collect();
            assert_eq!(labels, truth, "step {t}: the batch's own labels");
        }
        let want = cpu::vae_step(&cfg, &layout, &mut p, &mut m, &mut v, &x, &eps, &labels, rows, t, &opt);
        let got = read(&metrics);
        let what = format!("{:?} classes {classes:?} step {t}", cfg.arch);
        // Tolerances, from the largest differences seen on lavapipe times ~5-10: the loss parts
        // 1e-5 relative / 1e-5 absolute, gradients 2e-6 absolute + 1e-4 relative, weights 1e-5
        // absolute (1% of the learning rate: Adam's step normalises tiny gradients, so f32
        // noise in them moves a weight by a fraction of lr).
        assert_close(&format!("{what} recon"), &got[TRAIN_RECON..=TRAIN_RECON], &[want.recon], 0.0, 1e-5);
        assert_close(&format!("{what} kl"), &got[TRAIN_KL..=TRAIN_KL], &[want.kl], 1e-5, 1e-4);
        assert_close(&format!("{what} gradients"), &read(&vae.params.grads), &want.grads, 2e-6, 1e-4);
        assert_weights_close(&format!("{what} weights"), &read(&vae.params.values), &p, (&want.grads, &read(&vae.params.grads)), opt.lr, &mut noisy, t);
    }
}

#[test]
fn gan_steps_updating_d_first_match_cpu_reference_for_both_networks_and_batchnorm_state() {
    gan_steps_match_cpu_reference(wgen::models::gan::UpdateOrder::DFirst, None);
}

#[test]
fn gan_steps_updating_g_first_match_cpu_reference_for_both_networks_and_batchnorm_state() {
    gan_steps_match_cpu_reference(wgen::models::gan::UpdateOrder::GFirst, None);
}

#[test]
fn conditional_gan_steps_updating_d_first_match_cpu_reference_embeddings_included() {
    gan_steps_match_cpu_reference(wgen::models::gan::UpdateOrder::DFirst, Some(10));
}

#[test]
fn conditional_gan_steps_updating_g_first_match_cpu_reference_embeddings_included() {
    gan_steps_match_cpu_reference(wgen::models::gan::UpdateOrder::GFirst, Some(10));
}

#[test]
fn projection_gan_steps_match_cpu_reference_in_either_order_through_shared_and_class_heads() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    for update_order in [UpdateOrder::DFirst, UpdateOrder::GFirst] {
        gan_steps_match(GanConfig { label_smoothing: 0.1, update_order, classes: Some(10), projection: true, ..GanConfig::default() }, (3, 2e-4));
    }
}

/// The DCGAN's twins run at a tenth of its learning rate, from seed 5. Adam's early steps are
/// ±lr for any gradient above its eps, so a weight whose gradient is rounding noise (a conv
/// weight whose terms cancel, a bias before a batch norm) steps by ±lr at random; in the D-first
/// order G then learns from a D that differs by that much (G's gradients drifted up to 0.4% by
/// step 2 at 2e-4, and matched at 1e-7). Seed 3 also puts a LeakyReLU input of D's conv1 within
/// rounding of its kink at step 3 (the 17 gradients of one channel, 0.7% off).
const DCGAN_TWIN: (u64, f32) = (5, 2e-5);

#[test]
fn dcgan_steps_updating_d_first_match_cpu_reference_with_real_and_fake_batch_norm_groups_and_g_averaged_in_its_warm_up() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    // The average does not change training: the same steps also check it.
    gan_steps_match(GanConfig { label_smoothing: 0.1, update_order: UpdateOrder::DFirst, g_ema: Some(0.999), ..GanConfig::dcgan() }, DCGAN_TWIN);
}

#[test]
fn dcgan_steps_updating_g_first_match_cpu_reference_backpropagating_the_fake_group_alone() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    gan_steps_match(GanConfig { update_order: UpdateOrder::GFirst, ..GanConfig::dcgan() }, DCGAN_TWIN);
}

/// Seed 6: from DCGAN_TWIN's seed 5, a LeakyReLU input of D's conv1 sits within rounding of its
/// kink on these pictures (37 weight gradients of one channel off by up to 7e-4).
#[test]
fn dcgan_steps_match_cpu_reference_on_three_channel_12x12_images() {
    use wgen::models::gan::GanConfig;
    gan_steps_match(GanConfig { image: ImageShape { channels: 3, side: 12 }, ..GanConfig::dcgan() }, (6, DCGAN_TWIN.1));
}

/// pytorch/examples' DCGAN at a tenth of DCGAN_TWIN's rate again: its G stacks four batch
/// norms, and at 2e-5 the ±lr steps of weights whose gradients are rounding noise (DCGAN_TWIN)
/// moved G(z) at step 2 by up to 2.6e-5, past its 1e-5 tolerance. D at the same rate (the
/// DCGAN's own D rate, 2e-5, would step those weights by more than the check allows).
const EXAMPLES_TWIN: (u64, f32) = (DCGAN_TWIN.0, DCGAN_TWIN.1 / 10.0);

#[test]
fn dcgan_steps_match_cpu_reference_in_pytorch_examples_architecture_at_32x32() {
    use wgen::models::gan::GanConfig;
    gan_steps_match(GanConfig { image: ImageShape { channels: 3, side: 32 }, d_lr: Some(EXAMPLES_TWIN.1), ..GanConfig::dcgan() }, EXAMPLES_TWIN);
}

#[test]
fn conditional_dcgan_steps_match_cpu_reference_through_g_label_embedding_and_projection_heads_in_either_order() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    for update_order in [UpdateOrder::DFirst, UpdateOrder::GFirst] {
        let image = ImageShape { channels: 3, side: 12 };
        gan_steps_match(GanConfig { image, classes: Some(3), projection: true, update_order, ..GanConfig::dcgan() }, (6, DCGAN_TWIN.1));
    }
}

#[test]
fn conditional_dcgan_steps_match_cpu_reference_at_32x32_its_label_a_channel_of_gs_input_and_a_conv_head_per_class() {
    use wgen::models::gan::GanConfig;
    let image = ImageShape { channels: 3, side: 32 };
    gan_steps_match(GanConfig { image, classes: Some(3), projection: true, d_lr: Some(EXAMPLES_TWIN.1), ..GanConfig::dcgan() }, EXAMPLES_TWIN);
}

#[test]
fn dcgan_steps_match_cpu_reference_in_pytorch_examples_architecture_at_64x64() {
    use wgen::models::gan::GanConfig;
    gan_steps_match(GanConfig { image: ImageShape { channels: 3, side: 64 }, d_lr: Some(EXAMPLES_TWIN.1), ..GanConfig::dcgan() }, EXAMPLES_TWIN);
}

/// At 3×16×16 (768 values, near MNIST's 784): at 3×12×12, 1.01% of the gradients fell in (0,
/// 1e-7), just over the 1% that `assert_weights_close` allows.
#[test]
fn gan_steps_match_cpu_reference_on_three_channel_images() {
    use wgen::models::gan::GanConfig;
    gan_steps_match(GanConfig { label_smoothing: 0.1, image: ImageShape { channels: 3, side: 16 }, ..GanConfig::default() }, (3, 2e-4));
}

#[test]
fn gan_steps_with_their_own_discriminator_learning_rate_match_cpu_reference_in_either_order() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    for update_order in [UpdateOrder::GFirst, UpdateOrder::DFirst] {
        gan_steps_match(GanConfig { update_order, d_lr: Some(5e-5), ..GanConfig::default() }, (3, 2e-4));
    }
}

#[test]
fn dcgan_steps_with_every_augmentation_and_the_hinge_loss_match_cpu_reference_on_three_channel_12x12_images() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    use wgen::nn::{AugmentPolicy, GanLoss};
    for update_order in [UpdateOrder::DFirst, UpdateOrder::GFirst] {
        let cfg = GanConfig { image: ImageShape { channels: 3, side: 12 }, augment: AugmentPolicy::ALL, loss: GanLoss::Hinge, update_order, ..GanConfig::dcgan() };
        gan_steps_match(cfg, (6, DCGAN_TWIN.1));
    }
}

#[test]
fn dcgan_steps_with_spectral_norm_augmentation_and_the_hinge_loss_match_cpu_reference_with_and_without_d_batch_norm() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    use wgen::nn::{AugmentPolicy, GanLoss};
    for (update_order, d_batchnorm) in [(UpdateOrder::DFirst, true), (UpdateOrder::GFirst, false)] {
        let image = ImageShape { channels: 3, side: 12 };
        let cfg = GanConfig { image, augment: AugmentPolicy::ALL, loss: GanLoss::Hinge, spectral_norm: true, update_order, d_batchnorm, ..GanConfig::dcgan() };
        gan_steps_match(cfg, (6, DCGAN_TWIN.1));
    }
}

#[test]
fn projection_gan_steps_with_spectral_norm_match_cpu_reference_the_stacked_heads_one_matrix_pad_columns_included() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    for update_order in [UpdateOrder::DFirst, UpdateOrder::GFirst] {
        gan_steps_match(GanConfig { update_order, classes: Some(10), projection: true, spectral_norm: true, ..GanConfig::default() }, (3, 2e-4));
    }
}

#[test]
fn conditional_gan_steps_with_augmentation_match_cpu_reference_label_columns_passed_through() {
    use wgen::models::gan::{GanConfig, UpdateOrder};
    use wgen::nn::{AugmentPolicy, GanLoss};
    let augment = AugmentPolicy { translation: true, cutout: true, ..AugmentPolicy::default() };
    // At 2e-4 D's first Adam step moves a weight whose gradient is f32 noise by the full rate
    // on one side only (`assert_weights_close`); the D-first order then judges G through the
    // two updated Ds, and with a quarter of each image cut out, enough such weights differ to
    // move G's gradients by 10% (seen here); at 2e-5 those steps stay inside the tolerances.
    for (update_order, loss) in [(UpdateOrder::DFirst, GanLoss::Bce), (UpdateOrder::GFirst, GanLoss::Hinge)] {
        gan_steps_match(GanConfig { update_order, classes: Some(10), projection: true, augment, loss, ..GanConfig::default() }, (3, 2e-5));
    }
}

fn gan_steps_match_cpu_reference(update_order: wgen::models::gan::UpdateOrder, classes: Option<usize>) {
    use wgen::models::gan::GanConfig;
    gan_steps_match(GanConfig { label_smoothing: 0.1, update_order, classes, ..GanConfig::default() }, (3, 2e-4));
}

/// Three steps from `seed`'s weights at learning rate `lr`.
fn gan_steps_match(cfg: wgen::models::gan::GanConfig, (seed, lr): (u64, f32)) {
    use wgen::models::gan::{Gan, GanGraph, METRIC_SLOTS};
    let g = gpu();
    let dataset = dataset_of(cfg.image);
    let image = cfg.image.values();
    let split = DeviceSplit::upload(g, "train", &dataset.train).unwrap();
    let classes = cfg.classes;
    let (layout, state_layout, values, state) = Gan::initial(&cfg, seed);
    let gan = Gan::new(g, &cfg, &values, &state).unwrap();
    // pytorch/examples' DCGAN costs the CPU twin 40-200 M multiply-adds an image.
    let batch = if cfg.image.side >= 32 { 4 } else { 20 };
    let graph = GanGraph::new(g, &gan, batch).unwrap();
    let metrics = Tensor::zeros(g, "metrics", &[METRIC_SLOTS]).unwrap();
    let steps = StepBuffer::new(g, "test", 1);
    let opt = AdamConfig::new(lr, 0.5, 0.999);
    let program = graph.train_program(g, &gan, &split, &steps.uniform, 11, &metrics, &opt);

    let mut p = widen(&values);
    let mut s = widen(&state);
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    let mut noisy = vec![false; p.len()];
    // G's moving average starts as the initial weights.
    let mut average = cfg.g_ema.map(|_| (p.clone(), s.clone()));
    for t in 1..=3u32 {
        metrics.write(g, &[0.0; METRIC_SLOTS]);
        let (bc1, bc2) = opt.bias_corrections(t);
        let step = Step { t, rng_step: t - 1, batch_start: (t - 1) * batch as u32, adam_bc1: bc1, adam_bc2: bc2, ..Step::default() };
        submit_steps(g, &program, &steps, &[step]);
        g.wait();
        // The batch, noise and labels as the GPU drew them are the reference's inputs.
        let (real, fake, labels) = match &graph.conditioning {
            None => {
                let d_in = read(&graph.d_in);
                (widen(&d_in[..batch * image]), d_in[batch * image..].to_vec(), Vec::new())
            }
            Some(c) => (widen(&read(&c.real)), read(&c.fake), read(&c.labels).iter().map(|&l| l as usize).collect::<Vec<_>>()),
        };
        if classes.is_some() {
            let start = (t as usize - 1) * batch;
            let truth: Vec<usize> = dataset.train.labels[start..start + batch].iter().map(|&l| usize::from(l)).collect();
            assert_eq!(labels[..batch], truth[..], "step {t}: the real rows' own labels");
        }
        let z = widen(&read(&graph.z));
        let draws = graph.augmented.as_ref().map_or(Vec::new(), |a| widen(&read(&a.draws)));
        if let Some(a) = &graph.augmented {
            // What D saw: [real; G(z)] through each row's transform (the label columns, which
            // the D-first order re-embeds after D's update, left out).
            let images: Vec<f64> = real.iter().copied().chain(widen(&fake)).collect();
            let width = graph.d_in.shape[1];
            let seen: Vec<f32> = read(&a.seen).chunks(width).flat_map(|r| r[..image].to_vec()).collect();
            assert_close(&format!("step {t}: D's augmented input"), &seen, &cpu::diff_augment(&images, &draws, cfg.augment, (cfg.image.channels, cfg.image.side)), 1e-5, 1e-5);
        }
        let want = cpu::gan_step(&cfg, &layout, &state_layout, &mut p, &mut s, &mut m, &mut v, &real, &z, &labels, &draws, batch, t, &opt);
        if let Some((avg, avg_state)) = average.as_mut() {
            cpu::gan_average(&cfg, &layout, &state_layout, &p, &s, avg, avg_state, t);
        }
        let what = format!("{:?} {:?} classes {classes:?} step {t}", cfg.arch, cfg.update_order);
        // Tolerances as for the VAE.
        assert_close(&format!("{what} G(z)"), &fake, &want.fake, 1e-5, 1e-5);
        // Under the hinge loss the metrics are D's raw outputs, which a noisy weight's step
        // (below) moves four times as far as the sigmoid's probabilities.
        let metrics_atol = if cfg.loss == wgen::nn::GanLoss::Hinge { 4e-5 } else { 1e-5 };
        assert_close(&format!("{what} d_loss, g_loss, D(x), D(G(z))"), &read(&metrics), &want.metrics, metrics_atol, 1e-5);
        assert_close(&format!("{what} gradients"), &read(&gan.params.grads), &want.grads, 2e-6, 1e-4);
        let gpu_grads = read(&gan.params.grads);
        assert_weights_close(&format!("{what} weights"), &read(&gan.params.values), &p, (&want.grads, &gpu_grads), opt.lr, &mut noisy, t);
        // A bias before a batch norm (the DCGAN's) takes noisy steps (above) that shift the
        // batch means by as much, so the running means get that slack; the variances none.
        let statistics_close = |what: &str, got_state: &[f32], s: &[f64]| {
            for (stat, slack) in [("running_mean", 2.0 * f64::from(opt.lr) * f64::from(t)), ("running_var", 0.0)] {
                let idx: Vec<usize> = state_layout.entries.iter().filter(|e| e.name.ends_with(stat)).flat_map(|e| e.range()).collect();
                let (got, want): (Vec<f32>, Vec<f64>) = idx.iter().map(|&i| (got_state[i], s[i])).unzip();
                assert_close(&format!("{what} batch-norm {stat}"), &got, &want, 1e-5 + slack, 1e-5);
            }
        };
        statistics_close(&what, &read(&gan.params.state), &s);
        // Spectral norm's u and v after the step's last power iteration: unit vectors.
        let got_state = read(&gan.params.state);
        for e in state_layout.entries.iter().filter(|e| e.name.ends_with("._u") || e.name.ends_with("._v")) {
            assert_close(&format!("{what} {}", e.name), &got_state[e.range()], &s[e.range()], 1e-5, 1e-4);
        }
        // The average blends the weights above, so it has their slack and no more.
        if let (Some((avg, avg_state)), Some(got)) = (&average, &gan.params.average) {
            let what = format!("{what} average of G");
            assert_weights_close(&what, &read(&got.values), avg, (&want.grads, &gpu_grads), opt.lr, &mut noisy.clone(), t);
            statistics_close(&what, &read(&got.state), avg_state);
        }
    }
}

#[test]
fn padded_first_layers_start_with_zero_pad_columns_and_export_without_them() {
    use wgen::models::gan::{Gan, GanConfig};
    let cfg = GanConfig { classes: Some(10), ..GanConfig::default() };
    let (layout, _, values, _) = Gan::initial(&cfg, 5);
    let w = layout.get("discriminator.fc1.weight");
    assert_eq!((w.shape.clone(), w.exported_shape(), w.pad_cols), (vec![512, 796], vec![512, 794], 2));
    let rows: Vec<&[f32]> = values[w.range()].chunks(796).collect();
    assert!(rows.iter().all(|r| r[794..] == [0.0, 0.0]), "pad columns start at zero");
    // U(±1/sqrt(794)): the fan-in is the real columns'.
    let bound = 1.0 / 794f32.sqrt();
    assert!(rows.iter().all(|r| r[..794].iter().all(|v| v.abs() <= bound)) && rows[0][..794].iter().any(|v| v.abs() > 0.9 * bound));
    let exported = w.export(&values);
    assert_eq!(exported.len(), 512 * 794);
    let mut back = vec![7.0; values.len()];
    w.import(&exported, &mut back);
    assert_eq!(&back[w.range()], &values[w.range()], "export then import is the identity, pads zero");
}

#[test]
fn classifier_steps_match_cpu_reference_through_shifted_images_batch_norm_and_a_decaying_rate() {
    use wgen::models::classifier::{Classifier, ClassifierConfig, ClassifierGraph, METRIC_SLOTS, STREAM_SHIFT, TRAIN_CORRECT, TRAIN_LOSS};
    let g = gpu();
    let dataset = data::builtin();
    let split = DeviceSplit::upload(g, "train", &dataset.train).unwrap();
    let cfg = ClassifierConfig::default();
    let (layout, state_layout, values, state) = Classifier::initial(&cfg, 0);
    let c = Classifier::new(g, &cfg, &values, &state).unwrap();
    let rows = 24;
    let graph = ClassifierGraph::new(g, &c, rows, "classifier", true).unwrap();
    let metrics = Tensor::zeros(g, "metrics", &[METRIC_SLOTS]).unwrap();
    let steps = StepBuffer::new(g, "test", 1);
    // A tenth of the recipe's rate, as the DCGAN twins run: Adam's first steps are ±lr for any
    // gradient above its eps, so a weight whose gradient is ~1e-7 (a bias before a batch norm)
    // steps by a fraction of lr that turns on f32 rounding.
    let opt = AdamConfig::new(1e-4, 0.9, 0.999);
    let seed = 3;
    let program = graph.train_program(g, &c, &split, &steps.uniform, seed, &metrics, &opt);

    let (mut p, mut st) = (widen(&values), widen(&state));
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    let mut noisy = vec![false; p.len()];
    for t in 1..=3u32 {
        metrics.write(g, &[0.0; METRIC_SLOTS]);
        let (bc1, bc2) = opt.bias_corrections(t);
        // The rate falls as a linear schedule's would: 1, 0.75, 0.5.
        let lr_scale = 1.0 - (t - 1) as f32 / 4.0;
        let start = (t as usize - 1) * rows;
        let step = Step { t, rng_step: t - 1, batch_start: start as u32, adam_bc1: bc1, adam_bc2: bc2, lr_scale, ..Step::default() };
        submit_steps(g, &program, &steps, &[step]);
        g.wait();
        // The batch in the split's order and the shifts by the CPU's Philox: the twin draws its own.
        let images: Vec<f64> = dataset.train.images[start * 784..(start + rows) * 784].iter().map(|&b| f64::from(b) / 255.0).collect();
        let labels: Vec<usize> = dataset.train.labels[start..start + rows].iter().map(|&l| usize::from(l)).collect();
        let shifts: Vec<f64> = cpu::fill_labels(2 * rows, 2 * cfg.shift + 1, STREAM_SHIFT, t - 1, seed).into_iter().map(|s| s as f64).collect();
        let want = cpu::classifier_step(&cfg, &layout, &state_layout, &mut p, &mut st, &mut m, &mut v, &images, &shifts, &labels, rows, t, &opt, f64::from(lr_scale));
        let what = format!("classifier step {t}");
        assert_close(&format!("{what} shifted batch"), &read(&graph.x), &want.x, 1e-7, 0.0);
        let got = read(&metrics);
        assert_close(&format!("{what} loss"), &got[TRAIN_LOSS..=TRAIN_LOSS], &[want.loss], 1e-5, 1e-5);
        assert_close(&format!("{what} accuracy"), &got[TRAIN_CORRECT..=TRAIN_CORRECT], &[want.accuracy], 1e-6, 0.0);
        // The VAE's tolerance but 1e-5 absolute: batch norm over 24 × 196 values per channel,
        // most of them one background value, carries step 1's f32 rounding of the weights into
        // step 2's gradients at up to 7e-6 (13 of 839 k values); a wrong mean is 1e-4 off.
        assert_close(&format!("{what} gradients"), &read(&c.params.grads), &want.grads, 1e-5, 1e-4);
        assert_weights_close(&format!("{what} weights"), &read(&c.params.values), &p, (&want.grads, &read(&c.params.grads)), opt.lr, &mut noisy, t);
        // The running statistics, with the DCGAN twin's slack: a conv bias before a batch norm
        // takes noisy ±lr steps that shift the batch means by as much.
        let state_got = read(&c.params.state);
        for e in state_layout.entries.iter().filter(|e| e.name.contains("running")) {
            let slack = if e.name.ends_with("running_mean") { 2.0 * f64::from(opt.lr) * f64::from(t) } else { 0.0 };
            let r = e.range();
            assert_close(&format!("{what} {}", e.name), &state_got[r.clone()], &st[r], 1e-5 + slack, 1e-4);
        }
    }
}
