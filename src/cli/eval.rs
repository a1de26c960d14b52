//! `wgen eval`: the quality numbers of a trained model, and the calibration that gives them
//! meaning.

use crate::data::IMAGE;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::data::{self, DeviceSplit};
use super::progress::Console;
use crate::eval::{argmax, score, vae_scores, SampleScores};
use crate::gpu::Gpu;
use crate::models::cycling_classes;
use crate::models::gan;
use crate::data::SIDE;
use crate::models::vae::sample_images;
use crate::nn::{Step, StepBuffer};
use crate::train::checkpoint::{write_atomically, Checkpoint, Loaded};
use crate::train::judge::find_or_train;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run folder (runs/NAME) or a model.safetensors.
    #[arg(required_unless_present = "calibrate")]
    target: Option<PathBuf>,
    /// A classifier's model.safetensors (from `wgen train classifier`), for FD, IS and coverage
    /// [default: the built-in one for the built-in digits; for other data, one trained once
    /// and kept in the cache folder].
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Samples drawn for FD, IS and coverage.
    #[arg(long, default_value_t = 5000)]
    samples: usize,
    /// VAE: importance samples per test image for the IWAE bound.
    #[arg(long, default_value_t = 100)]
    iw_samples: usize,
    /// Folder with the four MNIST-format files [default: the run's own data, else the built-in digits].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of the evaluation's noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also score references (the training images, the same blurred, uniform noise, blank
    /// images, one repeated digit) against the test split, to show what the numbers mean.
    #[arg(long)]
    calibrate: bool,
}

/// The checkpoint, its run folder (if any) and the data folder the run trained on.
fn locate(target: &Path) -> Result<(PathBuf, PathBuf, Option<PathBuf>)> {
    if target.is_dir() {
        let model = target.join("model.safetensors");
        let config = std::fs::read_to_string(target.join("config.json")).with_context(|| format!("{} holds no run (no config.json)", target.display()))?;
        let json: Value = serde_json::from_str(&config)?;
        let data = json["config"]["data"].as_str().map(PathBuf::from);
        Ok((model, target.to_path_buf(), data))
    } else {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        Ok((target.to_path_buf(), dir, None))
    }
}

pub fn run(gpu: &Gpu, a: &EvalArgs, quiet: bool) -> Result<i32> {
    if a.samples == 0 || a.iw_samples == 0 {
        bail!("--samples and --iw-samples must be at least 1");
    }
    let located = a.target.as_deref().map(locate).transpose()?;
    let data_dir = a.data.clone().or_else(|| located.as_ref().and_then(|l| l.2.clone()));
    let dataset = data::load(data_dir.as_deref())?;
    let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
    let test_images: Vec<f32> = dataset.test.images.iter().map(|&b| f32::from(b) / 255.0).collect();
    let mut report = serde_json::Map::new();
    report.insert("data".into(), json!(dataset.source));
    report.insert("test_images".into(), json!(dataset.test.count));

    // --quiet: the scores are only in eval.json.
    let mut console = Console::new(quiet, None)?;
    let judge = find_or_train(gpu, a.classifier.as_deref(), data_dir.as_deref(), &dataset, &mut console)?;
    console.finish();
    let features = judge.load(gpu)?;
    let (reference, probs) = features.of(gpu, &test_images)?;
    let correct = probs.chunks(10).zip(&dataset.test.labels).filter(|(p, &l)| argmax(p) == usize::from(l)).count();
    let accuracy = correct as f64 / dataset.test.count as f64;
    console.say(&format!("classifier: {judge}, test accuracy {:.2}%", 100.0 * accuracy));
    report.insert("classifier".into(), json!(judge.to_string()));
    report.insert("classifier_test_accuracy".into(), json!(accuracy));

    if let Some((model_path, dir, _)) = &located {
        let ckpt = Checkpoint::read(model_path)?;
        let kind = ckpt.meta("model")?.to_string();
        console.say(&format!("evaluating {} ({kind}) on the test split of {} ({} images)", model_path.display(), dataset.source, dataset.test.count));
        report.insert("model".into(), json!(kind));
        let step = StepBuffer::new(gpu, "eval.sample", 1);
        step.set(gpu, &Step::default());
        let (samples, asked): (Vec<f32>, Option<Vec<usize>>) = match ckpt.load(gpu)? {
            Loaded::Vae(vae) => {
                let s = vae_scores(gpu, &vae, &test, a.iw_samples, a.seed)?;
                console.say(&format!("test negative ELBO {:.3} nats/image (reconstruction {:.3}, KL {:.3})", s.test_neg_elbo, s.test_recon, s.test_kl));
                console.say(&format!("IWAE bound, K = {}: -log p(x) <= {:.3} nats/image = {:.4} bits/dim", s.iw_samples, s.iwae_nll, s.bits_per_dim));
                report.insert("vae".into(), serde_json::to_value(&s)?);
                (sample_images(gpu, &vae, a.samples, &step, a.seed, None)?, vae.config.classes.map(|k| cycling_classes(a.samples, k)))
            }
            Loaded::Gan(gan) => (gan::sample_images(gpu, &gan, a.samples, &step, a.seed, None)?, gan.config.classes.map(|k| cycling_classes(a.samples, k))),
            Loaded::Classifier(_) => bail!("{}: `wgen eval` scores a vae or a gan, not a classifier", model_path.display()),
        };
        let s = score(&features, gpu, &samples, &reference, asked.as_deref())?;
        console.say(&scores_text(&format!("{kind} samples ({})", a.samples), &s));
        report.insert("samples".into(), serde_json::to_value(&s)?);
        let path = dir.join("eval.json");
        write_atomically(&path, serde_json::to_string_pretty(&Value::Object(report.clone()))?.as_bytes())?;
        console.say(&format!("wrote {}", path.display()));
    }

    if a.calibrate {
        let (f, r) = (&features, &reference);
        let n = a.samples.min(dataset.train.count);
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        let train: Vec<f32> = dataset.train.images[..n * IMAGE].iter().map(|&b| f32::from(b) / 255.0).collect();
        let noise: Vec<f32> = (0..n * IMAGE).map(|_| rng.random::<f32>()).collect();
        let blank = vec![0.0f32; n * IMAGE];
        let one: Vec<f32> = test_images[..IMAGE].iter().copied().cycle().take(n * IMAGE).collect();
        let blurred = blur(&train);
        console.say(&format!("calibration against the {} test images ({} images each):", dataset.test.count, n));
        let mut table = serde_json::Map::new();
        let references = [
            ("training images (the floor)", &train),
            ("training images, blurred", &blurred),
            ("uniform noise", &noise),
            ("blank images", &blank),
            ("one test digit repeated", &one),
        ];
        for (name, images) in references {
            let s = score(f, gpu, images, r, None)?;
            console.say(&scores_text(name, &s));
            table.insert(name.into(), serde_json::to_value(&s)?);
        }
        let path = located.as_ref().map_or_else(|| PathBuf::from("calibration.json"), |l| l.1.join("calibration.json"));
        write_atomically(&path, serde_json::to_string_pretty(&Value::Object(table))?.as_bytes())?;
        console.say(&format!("wrote {}", path.display()));
    }
    Ok(0)
}

/// 28×28 images blurred by a 5×5 binomial filter (about a Gaussian of σ = 1 pixel), zeros
/// beyond the edge: strokes as soft as a weak generator's, shapes intact.
fn blur(images: &[f32]) -> Vec<f32> {
    const TAPS: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
    let side = SIDE as isize;
    let pass = |src: &[f32], (dy, dx): (isize, isize)| -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        for (image, dst) in src.chunks(IMAGE).zip(out.chunks_mut(IMAGE)) {
            for y in 0..side {
                for x in 0..side {
                    dst[(y * side + x) as usize] = (-2..=2isize)
                        .map(|k| (y + k * dy, x + k * dx, TAPS[(k + 2) as usize]))
                        .filter(|&(sy, sx, _)| (0..side).contains(&sy) && (0..side).contains(&sx))
                        .map(|(sy, sx, w)| w * image[(sy * side + sx) as usize])
                        .sum();
                }
            }
        }
        out
    };
    pass(&pass(images, (0, 1)), (1, 0))
}

fn scores_text(name: &str, s: &SampleScores) -> String {
    let shares: Vec<String> = s.class_shares.iter().enumerate().map(|(c, v)| format!("{c}:{:.0}%", 100.0 * v)).collect();
    let mut text = format!(
        "  {name:<30} FD {:>9.3}  IS {:>6.3}  classes ≥5%: {:>2}/10  smallest {:.1}%  effective classes {:.2}  [{}]",
        s.fd,
        s.inception_score,
        s.modes,
        100.0 * s.smallest_share,
        s.effective_classes,
        shares.join(" ")
    );
    if let Some(a) = &s.agreement {
        let per: Vec<String> = a.per_class.iter().enumerate().map(|(c, v)| format!("{c}:{:.0}%", 100.0 * v)).collect();
        text += &format!("\n  {:<30} {:.1}% of the samples are classified as the class they asked for  [{}]", "asked-for class", 100.0 * a.overall, per.join(" "));
    }
    text
}
