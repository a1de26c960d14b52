//! Following a run in the tools people use: TensorBoard's event files, the best epoch's model
//! kept, and the judge scoring samples wgen did not make.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{fails_with, fails_with_code, ok, small_mnist, temp_dir, wgen};
use tfrecord::protobuf::event::What;
use tfrecord::protobuf::session_log::SessionStatus;
use tfrecord::protobuf::summary::value::Value as Content;

const CLASSIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/classifier/model.safetensors");

/// What TensorBoard shows of a run folder.
#[derive(Default)]
struct Board {
    /// tag → (step, value) in the order read
    scalars: BTreeMap<String, Vec<(i64, f32)>>,
    /// tag → (step, width, height)
    images: BTreeMap<String, Vec<(i64, i32, i32)>>,
    /// tag → (step, text)
    texts: BTreeMap<String, Vec<(i64, String)>>,
    /// event files read
    files: usize,
}

impl Board {
    /// Reads the folder's event files as TensorBoard does: in name order, where a session
    /// START drops every point logged before it at its step or later.
    fn read(run: &Path) -> Board {
        let mut files: Vec<_> = std::fs::read_dir(run).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().contains("tfevents")).collect();
        files.sort();
        let mut board = Board { files: files.len(), ..Board::default() };
        for file in files {
            for event in tfrecord::EventIter::open(&file, Default::default()).unwrap() {
                let event = event.unwrap();
                match event.what {
                    Some(What::SessionLog(log)) if log.status == SessionStatus::Start as i32 => board.purge(event.step),
                    Some(What::Summary(summary)) => {
                        for v in summary.value {
                            match v.value {
                                Some(Content::SimpleValue(x)) => board.scalars.entry(v.tag).or_default().push((event.step, x)),
                                Some(Content::Image(i)) => board.images.entry(v.tag).or_default().push((event.step, i.width, i.height)),
                                Some(Content::Tensor(t)) => board.texts.entry(v.tag).or_default().push((event.step, String::from_utf8(t.string_val[0].clone()).unwrap())),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        board
    }

    fn purge(&mut self, from: i64) {
        self.scalars.values_mut().for_each(|s| s.retain(|p| p.0 < from));
        self.images.values_mut().for_each(|s| s.retain(|p| p.0 < from));
        self.texts.values_mut().for_each(|s| s.retain(|p| p.0 < from));
    }

    fn steps(&self, tag: &str) -> Vec<i64> {
        self.scalars.get(tag).map_or(Vec::new(), |s| s.iter().map(|p| p.0).collect())
    }
}

fn records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn tensorboard_shows_each_epoch_once_after_a_resume_from_a_checkpoint_older_than_the_last_epoch() {
    let dir = temp_dir("tensorboard");
    small_mnist(&dir.join("data"), 160, 64);
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    // 5 steps an epoch: epochs end at steps 5, 10, 15, 20.
    let data = dir.join("data");
    // Scored every other epoch, 300 samples a time: scoring is the slow part here.
    ok(&["-q", "train", "gan", "--epochs", "2", "--eval-every", "2", "--eval-samples", "300", "--batch", "32", "--steps-per-submit", "2", "--data", data.to_str().unwrap(), "--classifier", CLASSIFIER, "--out", r]);
    let after_two = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    // Epoch 3 is logged, then the run stops in epoch 4 ...
    let out = wgen(&["-q", "train", "--resume", r, "--epochs", "4", "--stop-after-steps", "17"]);
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(Board::read(&run).steps("d_loss"), [5, 10, 15]);
    // ... and, as after a crash, only epoch 2's checkpoint is left: epoch 3 is trained again.
    std::fs::write(run.join("checkpoint.safetensors"), after_two).unwrap();
    ok(&["-q", "train", "--resume", r]);

    let board = Board::read(&run);
    assert_eq!(board.files, 3, "a file per start of the run");
    for tag in ["d_loss", "g_loss", "d_real", "d_fake", "img_per_s", "epoch"] {
        assert_eq!(board.steps(tag), [5, 10, 15, 20], "{tag}: one point per epoch, none twice");
    }
    for tag in ["fd", "inception_score", "smallest_share", "effective_classes", "modes", "class_shares/0", "class_shares/9", "best_fd"] {
        assert_eq!(board.steps(tag), [10, 20], "{tag}: one point per scored epoch");
    }
    let fd: Vec<f32> = records(&run).iter().filter_map(|r| Some(r["fd"].as_f64()? as f32)).collect();
    assert_eq!(board.scalars["fd"].iter().map(|p| p.1).collect::<Vec<_>>(), fd, "TensorBoard's FD is metrics.jsonl's");
    let grids = &board.images["samples"];
    assert_eq!(grids.iter().map(|g| g.0).collect::<Vec<_>>(), [5, 10, 15, 20], "the epoch's grid at the epoch's step");
    assert!(grids.iter().all(|&(_, w, h)| w > 8 * 28 && h > 8 * 28), "8×8 grids: {grids:?}");
    let settings = &board.texts["settings"];
    assert_eq!(settings.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 11], "the settings of the first start, and of the last resume (after step 10)");
    assert!(settings[1].1.contains("\"epochs\": 4") && settings[0].1.contains("\"epochs\": 2"), "{settings:?}");
}

/// The printed scores line of `wgen eval`, without its label.
fn scores_line(said: &str) -> String {
    let line = said.lines().find(|l| l.contains(" FD ")).unwrap_or_else(|| panic!("no scores in:\n{said}"));
    line[line.find(" FD ").unwrap()..].to_string()
}

#[test]
fn eval_scores_raw_files_and_image_folders_of_anyones_samples_as_it_scores_a_model() {
    let dir = temp_dir("eval-outside");
    small_mnist(&dir.join("data"), 128, 64);
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // Samples of a model drawn by `wgen sample` score as `wgen eval` scores the model, for an
    // unconditional and a conditional model (whose classes cycle as eval asks for them).
    for extra in [&[][..], &["--conditional"][..]] {
        let run = dir.join(format!("run{}", extra.len()));
        let r = run.to_str().unwrap();
        let mut args = vec!["-q", "train", "gan", "--epochs", "1", "--batch", "32", "--data", d, "--out", r];
        args.extend(extra);
        ok(&args);
        let raw = path(&format!("drawn{}.f32", extra.len()));
        ok(&["-q", "sample", &format!("{r}/model.safetensors"), "--n", "300", "--seed", "3", "--raw", &raw]);
        let of_model = ok(&["eval", r, "--samples", "300", "--seed", "3", "--classifier", CLASSIFIER]);
        let of_file = ok(&["eval", "--raw", &raw, "--data", d, "--classifier", CLASSIFIER]);
        assert_eq!(scores_line(&of_file), scores_line(&of_model), "{extra:?}");
        let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{raw}.eval.json")).unwrap()).unwrap();
        assert!(written["samples"]["fd"].as_f64().is_some() && written["samples"]["class_shares"].as_array().unwrap().len() == 10, "{written}");
    }
    // The same images as raw floats and as a folder of PNGs (grey, and RGB as torchvision's
    // save_image writes them) score alike: the test digits, 8-bit already, exactly.
    let digits = wgen::data::load(Some(&data), &Default::default(), &mut |_, _| {}).unwrap().test;
    std::fs::write(path("digits.f32"), digits.unit_floats().iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    for (folder, rgb) in [("grey", false), ("rgb", true)] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        for (i, pixels) in digits.images.chunks(784).enumerate() {
            let file = dir.join(folder).join(format!("{i:04}.png"));
            let bytes: Vec<u8> = if rgb { pixels.iter().flat_map(|&p| [p, p, p]).collect() } else { pixels.to_vec() };
            let colour = if rgb { image::ExtendedColorType::Rgb8 } else { image::ExtendedColorType::L8 };
            image::save_buffer(&file, &bytes, 28, 28, colour).unwrap();
        }
    }
    let of_raw = scores_line(&ok(&["eval", "--raw", &path("digits.f32"), "--data", d, "--classifier", CLASSIFIER]));
    assert_eq!(scores_line(&ok(&["eval", "--images", &path("grey"), "--data", d, "--classifier", CLASSIFIER])), of_raw);
    assert_eq!(scores_line(&ok(&["eval", "--images", &format!("{}/", path("rgb")), "--data", d, "--classifier", CLASSIFIER])), of_raw);
    assert!(dir.join("rgb.eval.json").is_file(), "DIR/ writes DIR.eval.json beside the folder");

    // Bad inputs: one line each, never a panic.
    std::fs::write(path("cut.f32"), vec![0u8; 784 * 4 * 2 + 12]).unwrap();
    fails_with(&["eval", "--raw", &path("cut.f32"), "--data", d, "--classifier", CLASSIFIER], "not a whole number of 28×28 grey images (3136 bytes each");
    std::fs::write(path("tanh.f32"), [0.5f32, -0.25].repeat(392).iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    fails_with(&["eval", "--raw", &path("tanh.f32"), "--data", d, "--classifier", CLASSIFIER], "image 0 has the value -0.25 at position 1; samples are in [0, 1]");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    fails_with(&["eval", "--images", &path("empty"), "--data", d, "--classifier", CLASSIFIER], "holds no PNG or JPEG images");
    std::fs::create_dir_all(dir.join("big")).unwrap();
    image::save_buffer(dir.join("big/a.png"), &[0u8; 32 * 32], 32, 32, image::ExtendedColorType::L8).unwrap();
    fails_with(&["eval", "--images", &path("big"), "--data", d, "--classifier", CLASSIFIER], "big/a.png is 32×32; the judge scores 28×28 grey images");
    fails_with_code(&["eval", "--raw", &path("digits.f32"), "--shape", "1,32,28"], 2, "wgen's images are square");
    // --shape reads the test digits in colour, so the grey file holds 21⅓ of its images.
    fails_with(&["eval", "--raw", &path("digits.f32"), "--shape", "3,28,28", "--data", d, "--classifier", CLASSIFIER], "not a whole number of 28×28 colour images (9408 bytes each");
    fails_with(&["eval", &path("run0"), "--shape", "1,28,28"], "--shape gives the shape of --raw or --images samples");
}

#[test]
fn keep_best_leaves_the_lowest_fd_epochs_model_which_eval_scores_at_that_fd_also_after_a_resume() {
    let dir = temp_dir("keep-best");
    small_mnist(&dir.join("data"), 192, 64);
    let data = dir.join("data");
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    // A rate far above the default's: the samples wander, so the last epoch is not the best.
    let common = ["--eval-every", "1", "--eval-samples", "500", "--batch", "32", "--lr", "3e-3", "--seed", "1", "--data", data.to_str().unwrap(), "--classifier", CLASSIFIER];
    let mut args = vec!["-q", "train", "gan", "--epochs", "2", "--out", r];
    args.extend(common);
    ok(&args);
    ok(&["-q", "train", "--resume", r, "--epochs", "3"]);
    let fds: Vec<f64> = records(&run).iter().map(|r| r["fd"].as_f64().unwrap()).collect();
    let best = (0..fds.len()).fold(0, |b, i| if fds[i] < fds[b] { i } else { b });
    assert!(best + 1 < fds.len(), "FD rose after its best epoch: {fds:?}");
    let last = &records(&run)[fds.len() - 1];
    assert_eq!((last["best_epoch"].as_u64(), last["best_fd"].as_f64()), (Some(best as u64 + 1), Some(fds[best])), "metrics.jsonl names the best epoch: {last}");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["best"]["epoch"].as_u64(), Some(best as u64 + 1), "config.json names it too");
    // Scored on the run's own data with the run's seed and sample count, the kept model gives
    // the best FD.
    let said = ok(&["eval", run.join("model-best.safetensors").to_str().unwrap(), "--seed", "1", "--samples", "500", "--classifier", CLASSIFIER]);
    assert!(scores_line(&said).starts_with(&format!(" FD {:>9.3}", fds[best])), "best FD {} in {fds:?}:\n{said}", fds[best]);
    assert!(run.join("model-best.eval.json").is_file() && !run.join("eval.json").exists(), "its scores named after it");
    ok(&["-q", "sample", run.join("model-best.safetensors").to_str().unwrap(), "--n", "4", "--grid", dir.join("best.png").to_str().unwrap()]);
    fails_with(&["train", "gan", "--keep-best", "--eval-every", "0"], "--keep-best picks the epoch by the FD of its samples");
    fails_with(&["train", "classifier", "--keep-best"], "--keep-best is for the generative models");
}

#[test]
fn a_run_on_the_builtin_digits_ends_with_its_fd_beside_the_real_digits_and_the_readmes_figures() {
    use wgen::train::judge::{in_context, SHIPPED_FLOOR_FD};
    use wgen::train::{ModelKind, TrainConfig};
    let record: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"epoch": 15, "fd": 111.93, "modes": 10}"#).unwrap();
    let gan = TrainConfig::defaults(ModelKind::Gan);
    let line = in_context(&gan, &record).expect("the built-in digits and judge");
    assert!(line.starts_with("FD 111.9 at epoch 15, 10 of 10 digits at ≥ 5%") && line.contains("35–38 at epoch 50"), "{line}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains(&format!("real training digits score {SHIPPED_FLOOR_FD}")), "the floor is the README's");
    assert!(readme.contains("FD 37 / 35 / 38"), "the MLP GAN's figures are the README's");
    let unscored: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"epoch": 15}"#).unwrap();
    assert_eq!(in_context(&gan, &unscored), None, "an unscored epoch has no FD to put in context");
    let other = TrainConfig { data: Some("pictures".into()), ..gan.clone() };
    assert_eq!(in_context(&other, &record), None, "other data: the figures are unknown");
    assert!(in_context(&TrainConfig::defaults(ModelKind::Vae), &record).is_some_and(|l| !l.contains("README")), "the VAE: the floor only");
}
