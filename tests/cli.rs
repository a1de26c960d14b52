//! The `wgen` binary as a user runs it: train, then sample from the checkpoint it wrote.

mod common;

use std::process::Command;

use common::{fails_with, ok, small_mnist, temp_dir, wgen};

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
    assert_eq!(png_size(&grid), (4 * 86 + 2, 3 * 86 + 2), "a 4×3 grid of 3×-scaled 28-pixel images with 2-pixel gaps");
    assert_eq!(config["config"]["gan"]["update_order"], "d-first", "D first by default");
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

fn record_losses(run: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            r.remove("img_per_s");
            r.remove("seconds");
            serde_json::Value::Object(r).to_string()
        })
        .collect()
}

fn tensors(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut t: Vec<(String, Vec<u8>)> = file.tensors().into_iter().map(|(n, v)| (n, v.data().to_vec())).collect();
    t.sort();
    t
}

/// A checkpoint's bytes and each tensor's shape by name.
fn tensor_shapes(path: &std::path::Path) -> (Vec<u8>, std::collections::BTreeMap<String, Vec<usize>>) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shapes = file.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect();
    (bytes, shapes)
}

#[test]
fn an_interrupted_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_one() {
    let dir = temp_dir("resume");
    // Three steps an epoch of 16 images, the fewest that leave a submit of two steps inside
    // an epoch and a whole epoch after the one interrupted (seven models, three runs each).
    small_mnist(&dir.join("data"), 48, 32);
    let data = dir.join("data");
    let common = ["--epochs", "3", "--batch", "16", "--steps-per-submit", "2", "--seed", "9", "--data", data.to_str().unwrap()];
    // The conditional GAN also draws labels every step: they must resume where they left off;
    // the conv VAE's scratch buffers must not carry state across the interruption, nor the
    // DCGAN's batch-norm statistics; an average of G must resume as it was, not restart; the
    // augmentation's draws must go on as they would have, and spectral norm's u and v.
    let none: &[&str] = &[];
    let augmented: &[&str] = &["--augment", "color,translation,cutout", "--loss", "hinge", "--spectral-norm"];
    for (model, extra) in [("gan", none), ("vae", none), ("gan", &["--conditional"]), ("conv-vae", none), ("dcgan", none), ("gan", &["--g-ema", "0.9"]), ("dcgan", augmented)] {
        let name = format!("{model}{}", extra.join(""));
        let (whole, cut) = (dir.join(format!("{name}-whole")), dir.join(format!("{name}-cut")));
        let mut args = vec!["train", model, "--out", whole.to_str().unwrap()];
        args.extend(common);
        args.extend(extra);
        ok(&args);
        // Submits of steps 1–2, 3, 4–5, 6, …: stopping after step 5 leaves epoch 2 one step short.
        let mut args = vec!["train", model, "--out", cut.to_str().unwrap(), "--stop-after-steps", "5"];
        args.extend(common);
        args.extend(extra);
        let out = wgen(&args);
        assert_eq!(out.status.code(), Some(130), "an interruption exits 130");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("wgen train --resume {}", cut.display())), "says how to resume: {stderr}");
        assert_eq!(record_losses(&cut).len(), 1, "epoch 1 recorded before the interruption");
        ok(&["train", "--resume", cut.to_str().unwrap()]);
        assert_eq!(record_losses(&cut), record_losses(&whole), "{name}: metrics differ after resuming");
        assert!(tensors(&cut.join("model.safetensors")) == tensors(&whole.join("model.safetensors")), "{name}: weights differ after resuming");
    }
    // A run resumes with its own settings: another augmentation, loss or spectral norm is refused.
    let run = dir.join("dcgan--augmentcolor,translation,cutout--losshinge--spectral-norm-cut");
    for changed in [["--augment", "translation"], ["--loss", "bce"], ["--spectral-norm", "false"]] {
        fails_with(&["train", "--resume", run.to_str().unwrap(), changed[0], changed[1]], "--resume continues with the run's own settings");
    }
    // Under spectral norm D's weights are saved as torch's parametrized modules name them.
    let (_, shapes) = tensor_shapes(&run.join("model.safetensors"));
    assert_eq!(shapes["discriminator.conv2.parametrizations.weight.original"], [128, 64, 4, 4]);
    assert_eq!(shapes["discriminator.conv2.parametrizations.weight.0._u"], [128]);
    assert_eq!(shapes["discriminator.fc.parametrizations.weight.0._v"], [128 * 7 * 7]);
    assert!(!shapes.contains_key("discriminator.conv2.weight"), "no plain weight beside the parametrized one");
    fails_with(&["train", "vae", "--spectral-norm", "--data", data.to_str().unwrap()], "--loss, --augment and --spectral-norm are for gan and dcgan");
}

#[test]
fn gan_with_g_ema_exports_the_average_of_g_beside_the_trained_d_and_checkpoints_both() {
    use std::collections::HashMap;
    use wgen::models::gan::{Gan, GanConfig};
    let dir = temp_dir("cli-g-ema");
    small_mnist(&dir.join("data"), 128, 40);
    let data = dir.join("data");
    let run = dir.join("run");
    ok(&["-q", "train", "gan", "--g-ema", "0.9", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let model: HashMap<String, Vec<u8>> = tensors(&run.join("model.safetensors")).into_iter().collect();
    let ckpt: HashMap<String, Vec<u8>> = tensors(&run.join("checkpoint.safetensors")).into_iter().collect();
    let (layout, state_layout, _, _) = Gan::initial(&GanConfig::default(), 0);
    let part = |blob: &str, entry: &wgen::models::params::ParamEntry| ckpt[blob][4 * entry.offset..4 * (entry.offset + entry.len())].to_vec();
    for name in ["generator.fc1.weight", "generator.bn2.weight", "generator.fc4.bias"] {
        let e = layout.get(name);
        assert_eq!(model[name], part("average.params", e), "{name}: exported from the average");
        assert_ne!(part("average.params", e), part("params", e), "{name}: 4 steps at 0.9 leave the average behind the trained weights");
    }
    let e = state_layout.get("generator.bn3.running_var");
    assert_eq!(model["generator.bn3.running_var"], part("average.state", e), "G's statistics from the average too");
    let e = layout.get("discriminator.fc1.weight");
    assert_eq!(model["discriminator.fc1.weight"], part("params", e), "D as trained");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["gan"]["g_ema"].as_f64(), Some(0.9f32 as f64));
    // The exported file is a model like any other: `wgen sample` reads it.
    ok(&["sample", run.join("model.safetensors").to_str().unwrap(), "--n", "4", "--grid", dir.join("g.png").to_str().unwrap()]);
    fails_with(&["train", "gan", "--g-ema", "1", "--data", data.to_str().unwrap()], "--g-ema must be in [0, 1)");
    fails_with(&["train", "vae", "--g-ema", "0.9", "--data", data.to_str().unwrap()], "--g-ema is for gan and dcgan");
}

#[test]
fn ctrl_c_stops_with_a_loadable_checkpoint_and_exit_130() {
    let dir = temp_dir("ctrl-c");
    small_mnist(&dir.join("data"), 512, 64);
    let run = dir.join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_wgen"))
        .args(["train", "gan", "--epochs", "1000", "--batch", "32", "--steps-per-submit", "2", "--data", dir.join("data").to_str().unwrap(), "--out", run.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !run.join("config.json").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let sample = dir.join("after.png");
    ok(&["sample", run.join("model.safetensors").to_str().unwrap(), "--n", "4", "--grid", sample.to_str().unwrap()]);
    assert!(tensors(&run.join("checkpoint.safetensors")).iter().any(|(n, _)| n == "adam.m"));
}

#[test]
fn config_file_sets_what_flags_do_not_and_refuses_unknown_keys() {
    let dir = temp_dir("config");
    small_mnist(&dir.join("data"), 64, 32);
    let file = dir.join("run.toml");
    std::fs::write(&file, format!("model = \"gan\"\nepochs = 1\nbatch = 16\nlabel-smoothing = 0.1\nupdate-order = \"g-first\"\ndata = \"{}\"\n", dir.join("data").display())).unwrap();
    let run = dir.join("run");
    ok(&["-q", "train", "--config", file.to_str().unwrap(), "--batch", "32", "--out", run.to_str().unwrap()]);
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["batch"], 32, "the flag overrides the file");
    assert_eq!(config["config"]["epochs"], 1, "the file overrides the default");
    assert!((config["config"]["gan"]["label_smoothing"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(config["config"]["gan"]["update_order"], "g-first");

    std::fs::write(&file, "model = \"gan\"\nepoch = 3\n").unwrap();
    let out = wgen(&["train", "--config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("run.toml") && stderr.contains("epoch"), "names the file and the key: {stderr}");
    std::fs::write(&file, "model = \"gan\"\nepochs = \"three\"\n").unwrap();
    let stderr = String::from_utf8_lossy(&wgen(&["train", "--config", file.to_str().unwrap()]).stderr).to_string();
    assert!(stderr.contains("epochs"), "names the key with the wrong type: {stderr}");
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap()
}

#[test]
fn sample_tools_draw_reconstructions_interpolations_manifolds_and_progressions() {
    let dir = temp_dir("sample-tools");
    small_mnist(&dir.join("data"), 128, 64);
    let data = dir.join("data");
    let (vae, gan) = (dir.join("vae"), dir.join("gan"));
    ok(&["-q", "train", "vae", "--z-dim", "2", "--epochs", "2", "--batch", "32", "--data", data.to_str().unwrap(), "--out", vae.to_str().unwrap()]);
    ok(&["-q", "train", "gan", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", gan.to_str().unwrap()]);
    let (vae_model, gan_model) = (vae.join("model.safetensors"), gan.join("model.safetensors"));
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();

    ok(&["sample", vae_model.to_str().unwrap(), "--recon", "--data", data.to_str().unwrap(), "--grid", &out("recon.png")]);
    assert_eq!(png_size(&dir.join("recon.png")), (8 * 86 + 2, 8 * 86 + 2), "4 pairs of rows of 8, 3× by default");
    ok(&["sample", vae_model.to_str().unwrap(), "--interpolate", "--rows", "3", "--cols", "5", "--scale", "2", "--pad", "1", "--grid", &out("lerp.png")]);
    assert_eq!(png_size(&dir.join("lerp.png")), (5 * 57 + 1, 3 * 57 + 1), "5 columns of 2×-scaled images with 1-pixel gaps");
    ok(&["sample", gan_model.to_str().unwrap(), "--interpolate", "--grid", &out("slerp.png")]);
    assert_eq!(png_size(&dir.join("slerp.png")), (10 * 86 + 2, 8 * 86 + 2));
    ok(&["sample", vae_model.to_str().unwrap(), "--manifold", "--rows", "4", "--cols", "4", "--raw", &out("manifold.f32")]);
    assert_eq!(std::fs::metadata(dir.join("manifold.f32")).unwrap().len(), 16 * 784 * 4);
    ok(&["sample", "--progression", vae.to_str().unwrap()]);
    assert_eq!(png_size(&vae.join("progression.png")), (2 * (466 + 8) + 8, 466 + 16), "two 2×-scaled epoch grids side by side");

    fails_with(&["sample", gan_model.to_str().unwrap(), "--class", "3"], "trained without --conditional");
    fails_with(&["sample", gan_model.to_str().unwrap(), "--manifold"], "needs a VAE");
    fails_with(&["sample", gan_model.to_str().unwrap(), "--recon"], "needs a VAE");
}

#[test]
fn a_terminal_gets_a_progress_bar_with_running_losses_and_a_line_per_epoch() {
    let dir = temp_dir("tty");
    small_mnist(&dir.join("data"), 512, 64);
    let run = dir.join("run");
    let command = format!(
        "{} train gan --epochs 1 --batch 32 --steps-per-submit 1 --data {} --out {}",
        env!("CARGO_BIN_EXE_wgen"),
        dir.join("data").display(),
        run.display()
    );
    // util-linux's `script` runs the command on a pseudo-terminal, as a user's shell would.
    let out = Command::new("script").args(["-qec", &command, "/dev/null"]).output().expect("`script` (util-linux) runs the command on a terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("epoch 1/1 [") && screen.contains("/16") && screen.contains("img/s"), "no progress bar drawn: {screen}");
    assert!(screen.contains("d_loss") && screen.contains("ETA"), "the bar shows running losses and an ETA: {screen}");
    assert!(screen.contains("epoch   1/1  d_loss"), "the epoch's summary line stays: {screen}");
}

/// One epoch of `model` on `dir`/data into `dir`/`out`, with wgen's cache in `dir`/cache and
/// no WGEN_MATMUL or WGEN_CONV but `env`: the run's config.json and what wgen said on stderr.
fn train_with_cache(dir: &std::path::Path, model: &str, batch: &str, env: Option<(&str, &str)>, out: &str) -> (serde_json::Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgen"));
    cmd.env("XDG_CACHE_HOME", dir.join("cache")).env_remove("WGEN_MATMUL").env_remove("WGEN_CONV");
    if let Some((key, value)) = env {
        cmd.env(key, value);
    }
    let (run, data) = (dir.join(out), dir.join("data"));
    let args = ["train", model, "--epochs", "1", "--batch", batch, "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()];
    let output = cmd.args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "wgen {args:?} failed:\n{stderr}");
    (serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap(), stderr)
}

#[test]
fn matmul_tuning_is_remembered_per_adapter_and_recorded_in_the_run() {
    let dir = temp_dir("cli-tune");
    small_mnist(&dir.join("data"), 128, 64);
    let cache = dir.join("cache");
    let train = |env_matmul: Option<&str>, out: &str| {
        let (config, stderr) = train_with_cache(&dir, "vae", "64", env_matmul.map(|m| ("WGEN_MATMUL", m)), out);
        (config["matmul"].as_str().unwrap().to_string(), stderr)
    };
    let (tuned, stderr) = train(Some("tune"), "run1");
    assert!(stderr.contains("timed the matmul kernels"), "{stderr}");
    let file = cache.join("wgen").join("matmul.json");
    let mut entries: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries.values_mut().next().unwrap();
    assert_eq!(entry["matmul"], tuned.as_str());
    assert!(["tiled", "vec4"].iter().all(|f| entry["ms"][*f].as_f64().is_some_and(|ms| ms > 0.0)), "{entry}");

    // A later run reads the entry instead of timing again, even on a CPU adapter.
    let other = if tuned == "vec4" { "tiled" } else { "vec4" };
    entry["matmul"] = other.into();
    std::fs::write(&file, serde_json::to_string(&entries).unwrap()).unwrap();
    let (used, stderr) = train(None, "run2");
    assert_eq!(used, other);
    assert!(!stderr.contains("timed the matmul kernels"), "{stderr}");
}

/// `wgen bench conv` times the forward, dX and dW of each of the conv models' 8 layers and
/// names the path training takes for each, beside the plain matmul of the same shape.
#[test]
fn bench_conv_times_every_pass_of_every_conv_layer_and_names_the_path_taken() {
    let out = ok(&["bench", "conv", "--batch", "2", "--reps", "1", "--json"]);
    let cases: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(cases.len(), 24, "{out}");
    for case in &cases {
        assert!(["im2col", "implicit"].contains(&case["chosen"].as_str().unwrap()), "{case}");
        assert!(case["wgen_gflops"].as_f64().unwrap() > 0.0 && case["matmul_gflops"].as_f64().unwrap() > 0.0, "{case}");
        assert!(case["splits"].as_u64().unwrap() >= 1, "{case}");
    }
}

/// `WGEN_CONV=tune` times every conv layer shape of the DCGAN on each path and keeps the
/// fastest per product; a later run on the same adapter (a CPU one, which never times on its
/// own) takes the remembered plans, and each run records the plans it took.
#[test]
fn conv_tuning_is_remembered_per_adapter_and_recorded_in_the_run() {
    let dir = temp_dir("cli-conv-tune");
    small_mnist(&dir.join("data"), 128, 64);
    let cache = dir.join("cache");
    let train = |tune: bool, out: &str| {
        let (config, stderr) = train_with_cache(&dir, "dcgan", "32", tune.then_some(("WGEN_CONV", "tune")), out);
        (config["conv_plans"].as_object().unwrap().clone(), stderr)
    };
    let (used, stderr) = train(true, "run1");
    assert!(stderr.contains("timed the convolution paths of"), "{stderr}");
    let file = cache.join("wgen").join("conv.json");
    let mut entries: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(entries.len(), 1, "one adapter and family");
    let plans = entries.values_mut().next().unwrap().as_object_mut().unwrap();
    // G's two transposed convolutions and D's two convolutions, each at its batch.
    assert!(plans.len() >= 4 && plans.len() == used.len(), "{plans:?}");
    for (key, entry) in plans.iter() {
        assert_eq!(entry["plan"], used[key], "{key}: the run took the plan it timed");
        // Each candidate's three passes were timed: lavapipe offers the implicit products too.
        let timed = entry["ms"].as_object().unwrap();
        assert!(timed.len() >= 6 && timed.values().all(|v| v.as_f64().is_some_and(|ms| ms > 0.0)), "{key}: {timed:?}");
    }

    // Every product of the first shape on im2col, unsplit: the next run takes it as remembered.
    // The second shape's entry names a plan no layer can run (an im2col weight gradient after
    // implicit products): that run takes the rule for it instead of failing.
    let (first, second) = (plans.keys().next().unwrap().clone(), plans.keys().nth(1).unwrap().clone());
    plans[&first]["plan"] = serde_json::json!({"output": "im2col", "input": "im2col", "weight": "im2col", "splits": 1});
    plans[&second]["plan"] = serde_json::json!({"output": "implicit", "input": "implicit", "weight": "im2col", "splits": 1});
    std::fs::write(&file, serde_json::to_string(&entries).unwrap()).unwrap();
    let (used, stderr) = train(false, "run2");
    assert!(!stderr.contains("timed the convolution paths"), "{stderr}");
    assert_eq!(used[&first], serde_json::json!({"output": "im2col", "input": "im2col", "weight": "im2col", "splits": 1}));
    assert!(!used.contains_key(&second), "{used:?}");
}

#[test]
fn profile_times_a_single_step_after_its_warm_up() {
    let dir = temp_dir("cli-profile");
    small_mnist(&dir.join("data"), 128, 64);
    let out = ok(&["profile", "gan", "--steps", "1", "--batch", "32", "--data", dir.join("data").to_str().unwrap()]);
    assert!(out.contains("profile of 1 gan training steps") && out.contains("adam"), "{out}");
}

#[test]
fn conditional_runs_draw_a_row_per_class_a_chosen_class_and_refuse_unknown_classes() {
    let dir = temp_dir("conditional");
    small_mnist(&dir.join("data"), 128, 64);
    let data = dir.join("data");
    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    for model in ["gan", "vae", "dcgan", "conv-vae"] {
        let run = dir.join(model);
        let said = ok(&["train", model, "--conditional", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()]);
        assert!(said.contains("conditioned on 10 classes"), "{said}");
        assert_eq!(said.contains("through a projection discriminator"), model.contains("gan"), "{said}");
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
        let key = if model.contains("vae") { "vae" } else { "gan" };
        assert_eq!(config["config"][key]["classes"], 10, "the class count comes from the data's labels");
        // The digits' names on the left: one 5-pixel glyph at 3× and 3 pixels either side.
        let names = 15 + 6;
        assert_eq!(png_size(&run.join("samples/epoch-001.png")), (8 * 58 + 2 + names, 10 * 58 + 2), "a row of 8 per class, 2× per epoch, named");
        let model_path = run.join("model.safetensors");
        let m = model_path.to_str().unwrap();
        ok(&["sample", m, "--grid", &out(&format!("{model}-rows.png"))]);
        assert_eq!(png_size(&dir.join(format!("{model}-rows.png"))), (10 * 86 + 2 + names, 10 * 86 + 2), "one named row per class by default");
        ok(&["sample", m, "--no-labels", "--grid", &out(&format!("{model}-plain.png"))]);
        assert_eq!(png_size(&dir.join(format!("{model}-plain.png"))), (10 * 86 + 2, 10 * 86 + 2), "--no-labels: the grid alone");
        ok(&["sample", m, "--class", "7", "--n", "4", "--raw", &out(&format!("{model}-seven.f32"))]);
        assert_eq!(std::fs::metadata(dir.join(format!("{model}-seven.f32"))).unwrap().len(), 4 * 784 * 4);
        ok(&["sample", m, "--interpolate", "--cols", "6", "--grid", &out(&format!("{model}-across.png"))]);
        assert_eq!(png_size(&dir.join(format!("{model}-across.png"))), (6 * 86 + 2, 10 * 86 + 2), "a row from each class to the next");
        fails_with(&["sample", m, "--class", "10"], "knows classes 0–9");
    }
    // PyTorch's shapes: the first layers read 100 + 10 and 784 + 10 columns (the 2 columns
    // that pad them to whole vec4s on the GPU are not exported).
    let sizes: std::collections::HashMap<String, usize> = tensors(&dir.join("gan/model.safetensors")).into_iter().map(|(name, data)| (name, data.len() / 4)).collect();
    // The projection discriminator (the default) ends in a shared head and one per class.
    for (name, len) in [("generator.label_emb.weight", 100), ("discriminator.label_emb.weight", 100), ("generator.fc1.weight", 256 * 110), ("discriminator.fc1.weight", 512 * 794), ("discriminator.fc3.weight", 11 * 256)] {
        assert_eq!(sizes.get(name), Some(&len), "{name}: {sizes:?}");
    }
    // The conditional DCGAN: the label's vector joins z at G's Linear; D's convolutions read
    // the image alone, and its last layer is the projection's shared head and one per class.
    let sizes: std::collections::HashMap<String, usize> = tensors(&dir.join("dcgan/model.safetensors")).into_iter().map(|(name, data)| (name, data.len() / 4)).collect();
    for (name, len) in [("generator.label_emb.weight", 100), ("generator.fc.weight", 6272 * 110), ("discriminator.conv1.weight", 64 * 16), ("discriminator.fc.weight", 11 * 6272)] {
        assert_eq!(sizes.get(name), Some(&len), "{name}: {sizes:?}");
    }
    assert!(!sizes.contains_key("discriminator.label_emb.weight"), "no label columns in the DCGAN's D");
    let sizes: std::collections::HashMap<String, usize> = tensors(&dir.join("vae/model.safetensors")).into_iter().map(|(name, data)| (name, data.len() / 4)).collect();
    assert_eq!((sizes["encoder.fc1.weight"], sizes["decoder.fc1.weight"]), (256 * 794, 128 * 12), "the CVAE's one-hot columns beside its 2-D z, no padding");
    let cvae = dir.join("vae/model.safetensors");
    ok(&["sample", cvae.to_str().unwrap(), "--manifold", "--class", "3", "--rows", "3", "--cols", "3", "--raw", &out("threes.f32")]);
    assert_eq!(std::fs::metadata(dir.join("threes.f32")).unwrap().len(), 9 * 784 * 4, "one class's latent plane");
    fails_with(&["sample", cvae.to_str().unwrap(), "--manifold"], "add --class K");
    ok(&["sample", dir.join("vae/model.safetensors").to_str().unwrap(), "--recon", "--data", data.to_str().unwrap(), "--grid", &out("cvae-recon.png")]);
    fails_with(&["train", "classifier", "--conditional", "--epochs", "1"], "a classifier already learns from the labels");
    // Training labels 0–8 only: the test split's nines are a class the model cannot know.
    let nine_less = dir.join("nine-less");
    small_mnist(&nine_less, 64, 64);
    let labels = nine_less.join("train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&labels).unwrap();
    bytes[8..].iter_mut().for_each(|b| *b %= 9);
    std::fs::write(&labels, bytes).unwrap();
    fails_with(&["train", "gan", "--conditional", "--epochs", "1", "--data", nine_less.to_str().unwrap(), "--out", &out("nine-less-run")], "knows classes 0–8");
    let prior = dir.join("prior");
    ok(&["-q", "train", "vae", "--conditional", "--class-prior", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", prior.to_str().unwrap()]);
    let sizes: std::collections::HashMap<String, usize> = tensors(&prior.join("model.safetensors")).into_iter().map(|(name, data)| (name, data.len() / 4)).collect();
    assert_eq!(sizes.get("prior.mean"), Some(&(10 * 2)), "a prior mean per class: {sizes:?}");
    ok(&["sample", prior.join("model.safetensors").to_str().unwrap(), "--interpolate", "--grid", &out("prior-across.png")]);
    // Without the projection: PyTorch-GAN's cgan, one logit.
    let cgan = dir.join("cgan");
    ok(&["-q", "train", "gan", "--conditional", "--projection", "false", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", cgan.to_str().unwrap()]);
    let (_, shapes) = tensor_shapes(&cgan.join("model.safetensors"));
    assert_eq!((shapes["discriminator.fc3.weight"].clone(), shapes["discriminator.fc3.bias"].clone()), (vec![1, 256], vec![1]));
    ok(&["sample", cgan.join("model.safetensors").to_str().unwrap(), "--class", "2", "--n", "3", "--raw", &out("cgan-twos.f32")]);
    fails_with(&["train", "gan", "--projection", "--epochs", "1"], "--projection is for `gan --conditional`");
    fails_with(&["train", "vae", "--conditional", "--projection", "--epochs", "1"], "--projection is for `gan --conditional`");
}

#[test]
fn conv_vae_trains_with_pytorch_conv_layouts_then_samples_reconstructs_and_evaluates() {
    let dir = temp_dir("cli-conv-vae");
    small_mnist(&dir.join("data"), 64, 40);
    let data = dir.join("data");
    let run = dir.join("run");
    let out = ok(&["train", "conv-vae", "--epochs", "2", "--batch", "32", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(out.contains("test_neg_elbo"), "{out}");
    let model = run.join("model.safetensors");
    let (bytes, shapes) = tensor_shapes(&model);
    // Conv2d [out, in, kh, kw]; ConvTranspose2d [in, out, kh, kw]; flatten and reshape in NCHW.
    let want = [
        ("encoder.conv1.weight", vec![32, 1, 4, 4]),
        ("encoder.conv1.bias", vec![32]),
        ("encoder.conv2.weight", vec![64, 32, 4, 4]),
        ("encoder.fc.weight", vec![256, 3136]),
        ("encoder.mu.weight", vec![32, 256]),
        ("encoder.logvar.bias", vec![32]),
        ("decoder.fc1.weight", vec![256, 32]),
        ("decoder.fc2.weight", vec![3136, 256]),
        ("decoder.deconv1.weight", vec![64, 32, 4, 4]),
        ("decoder.deconv1.bias", vec![32]),
        ("decoder.deconv2.weight", vec![32, 1, 4, 4]),
        ("decoder.deconv2.bias", vec![1]),
    ];
    for (name, shape) in want {
        assert_eq!(shapes.get(name), Some(&shape), "{name}");
    }
    assert_eq!(shapes.len(), 18, "9 layers, weight and bias each: {shapes:?}");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["model"], "vae");

    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    ok(&["sample", model.to_str().unwrap(), "--recon", "--data", data.to_str().unwrap(), "--grid", &out("recon.png")]);
    ok(&["sample", model.to_str().unwrap(), "--interpolate", "--rows", "2", "--cols", "3", "--grid", &out("lerp.png")]);
    // With --quiet, stdout is empty: the results are only in the files written.
    assert_eq!(ok(&["sample", model.to_str().unwrap(), "--n", "5", "--raw", &out("raw.f32"), "-q"]), "");
    assert_eq!(std::fs::metadata(dir.join("raw.f32")).unwrap().len(), 5 * 784 * 4);
    let classifier = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/classifier/model.safetensors");
    assert_eq!(ok(&["eval", run.to_str().unwrap(), "--iw-samples", "3", "--samples", "200", "--classifier", classifier, "--quiet"]), "");
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert!(e["vae"]["iwae_nll"].as_f64().unwrap() < e["vae"]["test_neg_elbo"].as_f64().unwrap(), "{e}");

    // Conditioned: conv1 reads the label as 10 more channels, decoder.fc1 [z | one-hot], and
    // reconstructions read the test images' labels.
    let conditioned = dir.join("conditioned");
    ok(&["train", "conv-vae", "--conditional", "--z-dim", "8", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", conditioned.to_str().unwrap(), "-q"]);
    let (_, shapes) = tensor_shapes(&conditioned.join("model.safetensors"));
    assert_eq!(shapes["encoder.conv1.weight"], vec![32, 11, 4, 4]);
    assert_eq!(shapes["decoder.fc1.weight"], vec![256, 18], "z then the one-hot, exported without padding");
    let model = conditioned.join("model.safetensors");
    ok(&["sample", model.to_str().unwrap(), "--recon", "--data", data.to_str().unwrap(), "--grid", &out("conditioned-recon.png")]);
}

#[test]
fn dcgan_trains_with_pytorch_layouts_and_batch_norm_statistics_then_samples_any_n_and_evaluates_in_chunks() {
    let dir = temp_dir("cli-dcgan");
    small_mnist(&dir.join("data"), 64, 40);
    let data = dir.join("data");
    let run = dir.join("run");
    let out = ok(&["train", "dcgan", "--epochs", "1", "--batch", "32", "--data", data.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(out.contains("D(G(z))"), "{out}");
    let model = run.join("model.safetensors");
    let (bytes, shapes) = tensor_shapes(&model);
    let want = [
        ("generator.fc.weight", vec![6272, 100]),
        ("generator.bn0.running_var", vec![6272]),
        ("generator.deconv1.weight", vec![128, 64, 4, 4]),
        ("generator.bn1.weight", vec![64]),
        ("generator.deconv2.weight", vec![64, 1, 4, 4]),
        ("generator.deconv2.bias", vec![1]),
        ("discriminator.conv1.weight", vec![64, 1, 4, 4]),
        ("discriminator.conv2.weight", vec![128, 64, 4, 4]),
        ("discriminator.bn2.running_mean", vec![128]),
        ("discriminator.fc.weight", vec![1, 6272]),
    ];
    for (name, shape) in want {
        assert_eq!(shapes.get(name), Some(&shape), "{name}");
    }
    // 6 layers with weight and bias, 3 batch norms with weight, bias and running statistics.
    assert_eq!(shapes.len(), 6 * 2 + 3 * 4, "{shapes:?}");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["model"], "gan");
    // The study's recipe is the default: G at 4e-4, D at 2e-5, G averaged; flags override it.
    let recipe = |run: &std::path::Path| {
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
        let c = &config["config"];
        [&c["adam"]["lr"], &c["gan"]["d_lr"], &c["gan"]["g_ema"]].map(|v| v.as_f64().map(|v| v as f32))
    };
    assert_eq!(recipe(&run), [Some(4e-4), Some(2e-5), Some(0.999)]);

    let out = |name: &str| dir.join(name).to_str().unwrap().to_string();
    ok(&["sample", model.to_str().unwrap(), "--interpolate", "--rows", "2", "--cols", "3", "--grid", &out("lerp.png")]);
    ok(&["sample", model.to_str().unwrap(), "--n", "5", "--raw", &out("raw.f32")]);
    assert_eq!(std::fs::metadata(dir.join("raw.f32")).unwrap().len(), 5 * 784 * 4);
    // Any --n: more than one pass holds (~668 on lavapipe) is drawn in chunks, and the first
    // chunk's first rows are the rows the smaller draw gave.
    ok(&["sample", model.to_str().unwrap(), "--n", "700", "--raw", &out("many.f32")]);
    let many = std::fs::read(dir.join("many.f32")).unwrap();
    assert_eq!(many.len(), 700 * 784 * 4);
    assert!(many[..5 * 784 * 4] == std::fs::read(dir.join("raw.f32")).unwrap()[..], "the first 5 of 700 samples differ from --n 5's");
    // 700 samples take two generator passes on lavapipe (a 128 MiB binding holds ~668 images'
    // deconv1 receptive fields).
    let classifier = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/classifier/model.safetensors");
    ok(&["eval", run.to_str().unwrap(), "--samples", "700", "--classifier", classifier]);
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert!(e["samples"]["fd"].as_f64().unwrap().is_finite(), "{e}");
    fails_with(&["train", "dcgan", "--conditional", "--projection", "false", "--data", data.to_str().unwrap()], "meets the label through its projection");
    fails_with(&["train", "dcgan", "--g-batchnorm", "false", "--data", data.to_str().unwrap()], "part of its architecture");
    fails_with(&["train", "gan", "--d-batchnorm", "true", "--data", data.to_str().unwrap()], "is for the dcgan");
    fails_with(&["train", "dcgan", "--d-lr", "0", "--data", data.to_str().unwrap()], "--d-lr must be a positive number");
    // The recipe knobs of the quality study: no batch norm in D, D's and G's learning rates, no
    // average of G.
    let plain = dir.join("plain");
    let flags = ["--d-batchnorm", "false", "--lr", "2e-4", "--d-lr", "1e-4", "--g-ema", "0", "--epochs", "1", "--batch", "32"];
    ok(&[&["-q", "train", "dcgan"][..], &flags, &["--data", data.to_str().unwrap(), "--out", plain.to_str().unwrap()]].concat());
    assert_eq!(recipe(&plain), [Some(2e-4), Some(1e-4), None]);
    let names: Vec<String> = tensors(&plain.join("model.safetensors")).into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.starts_with("discriminator.bn2")) && names.len() == 6 * 2 + 2 * 4, "{names:?}");
}
