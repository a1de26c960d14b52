//! What wgen survives: every bad input ends in one clear error line and a non-zero exit, never a
//! panic; a crash at any moment leaves a loadable checkpoint; divergence keeps the last good one.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{gpu, small_mnist, temp_dir};

fn wgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgen")).args(args).output().unwrap()
}

/// Runs wgen, expecting exit `code` and one stderr line containing `message`.
fn refuses(args: &[&str], code: i32, message: &str) {
    let out = wgen(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.contains(message), "{args:?}: expected `{message}` in: {stderr}");
    println!("{args:?} → {}", stderr.trim());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn idx(magic_dims: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut out = (0x0800 | magic_dims).to_be_bytes().to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid folder of 64 + 32 images to break one file of.
fn folder(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    small_mnist(&dir, 64, 32);
    dir
}

#[test]
fn every_bad_dataset_gets_one_clear_line() {
    let root = temp_dir("bad-data");
    let train = |data: &Path| vec!["train".to_string(), "vae".into(), "--epochs".into(), "1".into(), "--data".into(), s(data).into(), "--out".into(), s(&root.join("run-never")).into()];
    let check = |data: &Path, message: &str| {
        let args = train(data);
        refuses(&args.iter().map(String::as_str).collect::<Vec<_>>(), 1, message);
    };
    check(&root.join("nowhere"), "does not exist");
    std::fs::write(root.join("a-file"), "not a folder").unwrap();
    check(&root.join("a-file"), "is a file; pass the folder that holds the images (or the four MNIST files)");

    let d = folder(&root, "missing");
    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap();
    check(&d, "missing t10k-labels-idx1-ubyte");

    let d = folder(&root, "magic");
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(3, &[64, 1, 1], &[0; 64])).unwrap();
    check(&d, "magic number 0x00000803, expected 0x00000801");

    let d = folder(&root, "truncated-plain");
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(1, &[64], &[1; 40])).unwrap();
    check(&d, "header promises 64×1×1 = 64 bytes of data but the file holds 40");

    let d = folder(&root, "truncated-gzip");
    let whole = std::fs::read(d.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), &whole[..whole.len() / 2]).unwrap();
    check(&d, "corrupt gzip stream");

    let d = folder(&root, "corrupt-gzip");
    let mut bytes = whole.clone();
    for b in &mut bytes[20..60] {
        *b ^= 0x5a;
    }
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), &bytes).unwrap();
    check(&d, "corrupt gzip stream");

    let d = folder(&root, "counts");
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(1, &[63], &[1; 63])).unwrap();
    check(&d, "holds 64 images but");

    let d = folder(&root, "size");
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz(&idx(3, &[64, 30, 30], &vec![0; 64 * 900]))).unwrap();
    check(&d, "test images are 28×28 but training images 30×30");
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz(&idx(3, &[64, 28, 30], &vec![0; 64 * 840]))).unwrap();
    check(&d, "images are 28×30; wgen's models take square images");

    let d = folder(&root, "empty");
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), gz(&idx(3, &[0, 28, 28], &[]))).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(1, &[0], &[])).unwrap();
    check(&d, "holds no images");

    let d = folder(&root, "labels");
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(1, &[64], &[12; 64])).unwrap();
    check(&d, "label 12 is not a digit class");
}

#[test]
fn bad_flags_get_one_clear_line() {
    let root = temp_dir("bad-flags");
    let data = folder(&root, "data");
    let out = s(&root.join("run-never")).to_string();
    let base = ["train", "gan", "--data", s(&data), "--out", &out];
    let with = |extra: &[&str], code: i32, message: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        refuses(&args, code, message);
    };
    with(&["--batch", "1000"], 1, "--batch 1000 is larger than the 64 training images");
    with(&["--epochs", "0"], 1, "--epochs must be at least 1");
    with(&["--batch", "0"], 1, "--batch must be at least 1");
    with(&["--lr", "0"], 1, "--lr must be a positive number, got 0");
    with(&["--lr", "-0.1"], 1, "--lr must be a positive number, got -0.1");
    with(&["--epochs", "-1"], 2, "invalid value '-1' for '--epochs <EPOCHS>'");
    with(&["--g-activation", "swish"], 2, "unknown activation `swish`");
    with(&["--label-smoothing", "1.5"], 1, "--label-smoothing must be in [0, 1), got 1.5");
    with(&["--augment", "translation,flip"], 2, "unknown augmentation 'flip': give a comma list of color, translation and cutout");
    with(&["--loss", "wasserstein"], 2, "invalid value 'wasserstein' for '--loss <LOSS>'");
    for flag in [["--augment", "cutout"], ["--loss", "hinge"], ["--spectral-norm", "true"]] {
        refuses(&["train", "vae", "--data", s(&data), "--out", &out, flag[0], flag[1]], 1, "--loss, --augment and --spectral-norm are for gan and dcgan");
    }
    with(&["--limit", "0"], 1, "--limit keeps N of the training images; give N of 1 or more");
    with(&["--eval-samples", "1"], 1, "--eval-samples must be 2 or more");
    refuses(&["train"], 1, "which model?");
    refuses(&["frobnicate"], 2, "unrecognized subcommand 'frobnicate'");
}

#[test]
fn outputs_are_never_overwritten_or_written_where_impossible() {
    let root = temp_dir("bad-out");
    let data = folder(&root, "data");
    let file = root.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    refuses(&["train", "vae", "--batch", "32", "--data", s(&data), "--out", s(&file.join("run"))], 1, "cannot create");
    let run = root.join("run");
    let out = wgen(&["-q", "train", "vae", "--epochs", "1", "--batch", "32", "--data", s(&data), "--out", s(&run)]);
    assert!(out.status.success());
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    refuses(&["train", "gan", "--data", s(&data), "--out", s(&run)], 1, "already holds a run");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), before, "the earlier run is untouched");
}

#[test]
fn bad_checkpoints_get_one_clear_line() {
    let root = temp_dir("bad-ckpt");
    let data = folder(&root, "data");
    let (vae, gan) = (root.join("vae"), root.join("gan"));
    for (model, dir) in [("vae", &vae), ("gan", &gan)] {
        assert!(wgen(&["-q", "train", model, "--epochs", "1", "--batch", "32", "--data", s(&data), "--out", s(dir)]).status.success());
    }
    let model = std::fs::read(vae.join("model.safetensors")).unwrap();
    let bad = root.join("bad.safetensors");
    std::fs::write(&bad, &model[..model.len() / 3]).unwrap();
    refuses(&["sample", s(&bad)], 1, "is not a safetensors file");
    std::fs::write(&bad, "hello, I am text").unwrap();
    refuses(&["sample", s(&bad)], 1, "is not a safetensors file");
    refuses(&["sample", s(&root.join("absent.safetensors"))], 1, "cannot read checkpoint");

    // Drop one tensor, and reshape another, keeping the metadata.
    let file = safetensors::SafeTensors::deserialize(&model).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&model).unwrap();
    let meta = header.metadata().clone();
    let keep: Vec<(String, safetensors::tensor::TensorView<'_>)> = file.tensors().into_iter().filter(|(n, _)| n != "encoder.fc1.weight").collect();
    std::fs::write(&bad, safetensors::tensor::serialize(keep, meta.clone()).unwrap()).unwrap();
    refuses(&["sample", s(&bad)], 1, "missing tensor encoder.fc1.weight");
    let bias = file.tensor("decoder.out.bias").unwrap();
    let reshaped = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![28, 28], bias.data()).unwrap();
    let mut all: Vec<(String, safetensors::tensor::TensorView<'_>)> = file.tensors().into_iter().filter(|(n, _)| n != "decoder.out.bias").collect();
    all.push(("decoder.out.bias".into(), reshaped));
    std::fs::write(&bad, safetensors::tensor::serialize(all, meta).unwrap()).unwrap();
    refuses(&["sample", s(&bad)], 1, "tensor decoder.out.bias has shape [28, 28], the model needs [784]");

    // A GAN's checkpoint in the VAE's run: --resume refuses it.
    std::fs::copy(gan.join("checkpoint.safetensors"), vae.join("checkpoint.safetensors")).unwrap();
    refuses(&["train", "--resume", s(&vae), "--epochs", "2"], 1, "written for a different model");
    refuses(&["train", "--resume", s(&vae), "--lr", "0.1"], 1, "only --epochs may be given");
    // Naming the model, as a first-time user types it: the run's own is accepted, another refused.
    refuses(&["train", "gan", "--resume", s(&vae), "--epochs", "2"], 1, "is a vae run; resume it with `wgen train vae --resume");
    let out = wgen(&["train", "gan", "--resume", s(&gan), "--epochs", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("resuming gan on") && said.contains("for 2 epochs"), "{said}");
}

#[test]
fn a_batch_past_the_adapters_limits_is_refused_before_any_work() {
    let root = temp_dir("too-big");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let n = 30_000u32;
    for (name, count) in [("train", n), ("t10k", 16)] {
        std::fs::write(data.join(format!("{name}-images-idx3-ubyte.gz")), gz(&idx(3, &[count, 28, 28], &vec![0; count as usize * 784]))).unwrap();
        std::fs::write(data.join(format!("{name}-labels-idx1-ubyte")), idx(1, &[count], &vec![0; count as usize])).unwrap();
    }
    // D's [real; fake] input alone is 2 × 28,000 × 784 floats = 175,616,000 bytes.
    refuses(&["train", "gan", "--batch", "28000", "--data", s(&data), "--out", s(&root.join("run"))], 1, "discriminator.input needs 175616000 bytes");
}

#[test]
fn the_idx_and_checkpoint_readers_survive_random_and_mutated_bytes() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let valid = idx(3, &[3, 28, 28], &[7; 3 * 784]);
    let seeds = [valid.clone(), gz(&valid), idx(1, &[5], &[1, 2, 3, 4, 5])];
    let mutate = |rng: &mut rand::rngs::StdRng, base: &[u8]| -> Vec<u8> {
        let mut b = base.to_vec();
        match rng.random_range(0..5) {
            0 => b.truncate(rng.random_range(0..=b.len())),
            1 => {
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..b.len().max(1));
                    if i < b.len() {
                        b[i] = rng.random();
                    }
                }
            }
            2 => b.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
            3 => b = (0..rng.random_range(0..256)).map(|_| rng.random::<u8>()).collect(),
            _ => {
                let i = rng.random_range(0..b.len().clamp(1, 16));
                if i < b.len() {
                    b[i] = 0xff;
                }
            }
        }
        b
    };
    for case in 0..3000 {
        let base = &seeds[case % seeds.len()];
        let bytes = mutate(&mut rng, base);
        let dims = if case % 3 == 2 { 1 } else { 3 };
        let outcome = std::panic::catch_unwind(|| wgen::data::decode_idx("fuzz", bytes.clone(), dims));
        assert!(outcome.is_ok(), "IDX case {case} panicked on {} bytes", bytes.len());
    }

    let dir = temp_dir("fuzz-ckpt");
    let data = folder(&dir, "data");
    assert!(wgen(&["-q", "train", "vae", "--epochs", "1", "--batch", "32", "--data", s(&data), "--out", s(&dir.join("run"))]).status.success());
    let valid = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    let (layout, state_layout, values, state) = wgen::models::vae::Vae::initial(&wgen::models::vae::VaeConfig::default(), 0);
    let path = dir.join("fuzz.safetensors");
    for case in 0..400 {
        let bytes = if case % 4 == 0 { valid[..rng.random_range(0..valid.len())].to_vec() } else {
            let mut b = valid.clone();
            // The header is where a reader can be led astray: mutate there most.
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..b.len().min(2048));
                b[i] = rng.random();
            }
            b
        };
        std::fs::write(&path, &bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(ckpt) = wgen::train::checkpoint::Checkpoint::read(&path) {
                let (mut v, mut s) = (values.clone(), state.clone());
                let _ = ckpt.fill(&layout, &mut v, &state_layout, &mut s);
            }
        });
        assert!(outcome.is_ok(), "checkpoint case {case} panicked");
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_loadable_checkpoint() {
    use rand::{Rng, SeedableRng};
    let root = temp_dir("kill-9");
    let data = root.join("data");
    small_mnist(&data, 64, 32);
    let run = root.join("run");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Two steps an epoch and a checkpoint every epoch: the process spends much of its time
    // writing checkpoints, so the kills land in and around the writes.
    for round in 0..8 {
        let mut args = vec!["-q".to_string(), "train".into()];
        if run.join("checkpoint.safetensors").exists() {
            args.extend(["--resume".into(), s(&run).into(), "--epochs".into(), "100000".into()]);
        } else {
            args.extend(["vae", "--epochs", "100000", "--batch", "32", "--checkpoint-every", "1", "--data", s(&data), "--out", s(&run)].map(String::from));
            let _ = std::fs::remove_dir_all(&run);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgen")).args(&args).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(1500..4000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if run.join("checkpoint.safetensors").exists() {
            wgen::train::checkpoint::Checkpoint::read(&run.join("checkpoint.safetensors"))
                .unwrap_or_else(|e| panic!("round {round}: checkpoint unreadable after kill -9: {e}"));
            let grid = root.join("grid.png");
            let out = wgen(&["sample", s(&run.join("model.safetensors")), "--n", "4", "--grid", s(&grid)]);
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    assert!(run.join("checkpoint.safetensors").exists(), "no checkpoint was ever written");
}

#[test]
fn divergence_stops_with_the_epoch_and_keeps_the_last_good_checkpoint() {
    let root = temp_dir("nan");
    let data = folder(&root, "data");
    // An absurd learning rate from the start: nothing is written but the run's config.
    let first = root.join("absurd");
    refuses(&["train", "vae", "--lr", "1e30", "--batch", "32", "--data", s(&data), "--out", s(&first)], 1, "training diverged in epoch 1 (steps 1..2): the training reconstruction loss is NaN; no checkpoint had been written yet");
    assert!(!first.join("model.safetensors").exists());

    // A good epoch, then the learning rate edited into the absurd and the run resumed.
    let run = root.join("run");
    assert!(wgen(&["-q", "train", "vae", "--epochs", "1", "--batch", "32", "--data", s(&data), "--out", s(&run)]).status.success());
    let good = std::fs::read(run.join("model.safetensors")).unwrap();
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    json["config"]["adam"]["lr"] = serde_json::json!(1e30);
    std::fs::write(run.join("config.json"), json.to_string()).unwrap();
    refuses(&["train", "--resume", s(&run), "--epochs", "2"], 1, "training diverged in epoch 2 (steps 3..4): the training reconstruction loss is NaN; the last good checkpoint is kept in");
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), good, "the last good checkpoint is kept");
}

#[test]
fn a_lost_device_is_reported_with_the_kept_checkpoint() {
    let g = wgen::gpu::Gpu::new(&wgen::gpu::GpuOptions::default()).unwrap();
    assert!(g.lost().is_none());
    g.device.destroy();
    g.wait();
    let err = g.check_lost(Path::new("runs/x")).unwrap_err().to_string();
    assert!(err.contains("the GPU device was lost") && err.contains("--resume runs/x"), "{err}");
    let _ = gpu();
}
