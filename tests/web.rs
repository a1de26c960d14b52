//! The browser's way through the library, natively: the adapter the platform prefers, readbacks
//! as futures, and `Live`, the trainer a page steps, against `wgen train`. The page itself is
//! built and driven in a real browser by tests/browser.rs.

mod common;

use common::{gpu, small_mnist, temp_dir};
use wgen::train::{train, Live, ModelKind, Silent, TrainConfig};

#[test]
fn the_preferred_adapter_opens_and_reads_back_through_a_future() {
    // The browser's path (request_adapter, then awaited readbacks), driven natively.
    let gpu = pollster::block_on(wgen::gpu::Gpu::preferred()).expect("an adapter (lavapipe on CI)");
    let values: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
    let t = wgen::gpu::Tensor::from_slice(&gpu, "values", &[37], &values).unwrap();
    let back: Vec<f32> = pollster::block_on(gpu.read_async(&t.buffer, 3, 30)).unwrap();
    assert_eq!(back, values[3..33]);
}

/// Steps a `Live` run in uneven pieces, reading its losses between them, across an epoch
/// boundary; the per-epoch means it adds up must be the trainer's, and its safetensors the
/// trainer's model.safetensors. With `streamed`, the live run streams its training images.
fn live_matches_the_trainer(model: ModelKind, keys: &[(&str, &str)], streamed: bool) {
    let dir = temp_dir(&format!("live-{}", model.name()));
    small_mnist(&dir.join("data"), 640, 100);
    let mut cfg = TrainConfig::defaults(model);
    cfg.epochs = 2;
    cfg.batch = 32;
    cfg.eval_every = Some(0);
    cfg.data = Some(dir.join("data"));
    cfg.out = dir.join("run");
    let run = train(gpu(), &cfg, &mut Silent).unwrap();

    let dataset = wgen::data::load(cfg.data.as_deref(), &cfg.images, &mut |_, _| {}).unwrap();
    let mut live = Live::new(gpu(), &TrainConfig { stream: streamed, ..cfg.clone() }, dataset).unwrap();
    assert_eq!(live.steps_per_epoch(), 20);
    for (epoch, record) in run.records.iter().enumerate() {
        let mut totals = vec![0.0; keys.len()];
        let mut done = 0;
        for piece in [1, 6, 32, 100] {
            if done == 20 {
                break;
            }
            let n = live.submit(gpu(), piece);
            let window = pollster::block_on(live.losses(gpu())).unwrap();
            assert_eq!((window.epoch, window.steps), (epoch as u32 + 1, n), "a window is the steps since the last read, within the epoch");
            for (total, (key, _)) in totals.iter_mut().zip(keys) {
                *total += window.values.iter().find(|(k, _)| k == key).unwrap().1 * n as f64;
            }
            done += n;
        }
        assert_eq!(done, 20, "submit stops at the end of the epoch");
        for (total, (key, recorded)) in totals.iter().zip(keys) {
            let want = record[*recorded].as_f64().unwrap();
            assert!((total / 20.0 - want).abs() < 2e-3 * want.abs().max(1.0), "epoch {}: {key} {} by the live run, {want} by the trainer", epoch + 1, total / 20.0);
        }
    }
    assert_eq!(live.global_step(), 40);
    let bytes = pollster::block_on(live.model_safetensors(gpu())).unwrap();
    let file = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    let (ours, theirs) = (safetensors::SafeTensors::deserialize(&bytes).unwrap(), safetensors::SafeTensors::deserialize(&file).unwrap());
    let mut names = ours.names();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        assert_eq!(ours.tensor(name).unwrap().data(), theirs.tensor(name).unwrap().data(), "{name} differs from the trainer's");
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let (_, file_meta) = safetensors::SafeTensors::read_metadata(&file).unwrap();
    assert_eq!(meta.metadata(), file_meta.metadata());
}

#[test]
fn a_live_vae_stepped_in_pieces_matches_the_trainer_across_epochs() {
    live_matches_the_trainer(ModelKind::Vae, &[("loss", "train_loss")], false);
}

#[test]
fn a_live_gan_stepped_in_pieces_streaming_its_images_matches_the_resident_trainer_across_epochs() {
    live_matches_the_trainer(ModelKind::Gan, &[("d_loss", "d_loss"), ("g_loss", "g_loss"), ("d_real", "d_real"), ("d_fake", "d_fake")], true);
}

#[test]
fn a_live_vae_passes_the_test_split_and_shows_reconstructions() {
    let dir = temp_dir("live-test-pass");
    small_mnist(&dir.join("data"), 256, 700);
    let mut cfg = TrainConfig::defaults(ModelKind::Vae);
    cfg.batch = 64;
    cfg.data = Some(dir.join("data"));
    let dataset = wgen::data::load(cfg.data.as_deref(), &cfg.images, &mut |_, _| {}).unwrap();
    let first_test_images = dataset.test.images[..8 * 784].to_vec();
    let mut live = Live::new(gpu(), &cfg, dataset).unwrap();
    live.submit(gpu(), 4);
    let first = pollster::block_on(live.test_pass(gpu(), 8)).unwrap().expect("a VAE has a test pass");
    let again = pollster::block_on(live.test_pass(gpu(), 8)).unwrap().unwrap();
    assert_eq!(first.neg_elbo, again.neg_elbo, "a second pass starts from cleared sums");
    assert!(first.neg_elbo > 50.0 && first.neg_elbo < 600.0, "−ELBO {} after 4 steps", first.neg_elbo);
    assert_eq!(first.originals.len(), 8 * 784);
    let want: Vec<f32> = first_test_images.iter().map(|&b| f32::from(b) / 255.0).collect();
    let off = first.originals.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(off < 1e-6, "the first test images, in order: off by up to {off}");
    assert!(first.reconstructions.iter().all(|v| (0.0..=1.0).contains(v)));
    let grid = pollster::block_on(live.grid(gpu(), None)).unwrap();
    assert_eq!(grid.len(), 64 * 784);
    let window = pollster::block_on(live.losses(gpu())).unwrap();
    assert_eq!(window.steps, 4, "test passes leave the training sums alone");
}
