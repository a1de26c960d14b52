//! The `wgen` binary as a user runs it: train, then sample from the checkpoint it wrote.

mod common;

use std::process::Command;

use common::{small_mnist, temp_dir};

fn wgen(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wgen")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "wgen {args:?} panicked:\n{stderr}");
    out
}

fn ok(args: &[&str]) -> String {
    let out = wgen(args);
    assert!(out.status.success(), "wgen {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn devices_lists_an_adapter() {
    let out = ok(&["devices"]);
    assert!(out.contains("* "), "no adapter marked as chosen:\n{out}");
}

#[test]
fn train_gan_then_sample_a_grid_and_raw_floats() {
    let dir = temp_dir("cli-gan");
    small_mnist(&dir.join("data"), 128, 64);
    let data = dir.join("data");
    let run = dir.join("run");
    let out = ok(&["train", "gan", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(out.contains("d_loss"), "{out}");
    let line = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    for key in ["epoch", "d_loss", "g_loss", "d_real", "d_fake", "img_per_s", "seconds"] {
        assert!(record.get(key).is_some(), "metrics.jsonl lacks {key}: {record}");
    }
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["gan"]["g_activation"], "leaky_relu:0.2");
    assert!(config["adapter"].as_str().is_some_and(|a| !a.is_empty()));

    let (grid, raw) = (dir.join("grid.png"), dir.join("raw.f32"));
    let model = run.join("model.safetensors");
    ok(&["sample", model.to_str().unwrap(), "--n", "10", "--grid", grid.to_str().unwrap(), "--raw", raw.to_str().unwrap(), "--seed", "3"]);
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(bytes.len(), 10 * 784 * 4);
    let values: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)), "raw samples leave [0, 1]");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&grid).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (4 * 30 + 2, 3 * 30 + 2), "a 4×3 grid of 28-pixel images with 2-pixel gaps");
}

#[test]
fn checkpoint_has_pytorch_names_and_shapes() {
    let dir = temp_dir("cli-vae");
    small_mnist(&dir.join("data"), 128, 64);
    let run = dir.join("run");
    ok(&["train", "vae", "--epochs", "1", "--batch", "64", "--data", dir.join("data").to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let bytes = std::fs::read(run.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shapes: std::collections::BTreeMap<String, Vec<usize>> =
        file.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect();
    let want = [
        ("encoder.fc1.weight", vec![256, 784]),
        ("encoder.fc1.bias", vec![256]),
        ("encoder.fc2.weight", vec![128, 256]),
        ("encoder.mu.weight", vec![32, 128]),
        ("encoder.mu.bias", vec![32]),
        ("encoder.logvar.weight", vec![32, 128]),
        ("decoder.fc1.weight", vec![128, 32]),
        ("decoder.fc2.weight", vec![256, 128]),
        ("decoder.out.weight", vec![784, 256]),
        ("decoder.out.bias", vec![784]),
    ];
    for (name, shape) in want {
        assert_eq!(shapes.get(name), Some(&shape), "{name}");
    }
    assert_eq!(shapes.len(), 14, "7 Linear layers, weight and bias each: {shapes:?}");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["model"], "vae");
}
