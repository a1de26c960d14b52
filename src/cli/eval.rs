//! `wgen eval`: the quality numbers of a trained model, and the calibration that gives them
//! meaning.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::data::{self, Dataset, DeviceSplit, ImageOptions, ImageShape};
use crate::train::{report_skipped, Monitor};
use super::progress::Console;
use super::run_data;
use crate::eval::{argmax, score, vae_scores, Features, SampleScores};
use crate::gpu::Gpu;
use crate::models::cycling_classes;
use crate::models::gan;
use crate::models::vae::sample_images;
use crate::nn::{Step, StepBuffer};
use crate::train::checkpoint::{write_atomically, Checkpoint, Loaded};
use crate::train::judge::{find_or_train, unjudged};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run folder (runs/NAME) or a model.safetensors.
    #[arg(required_unless_present_any = ["calibrate", "raw", "images"])]
    target: Option<PathBuf>,
    /// Score samples made elsewhere instead: a file of [n, C, H, W] little-endian f32 in
    /// [0, 1] with no header, as `wgen sample --raw` writes (scores go to FILE.eval.json).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "images"])]
    raw: Option<PathBuf>,
    /// Score samples made elsewhere instead: the PNG/JPEG files in a folder, each of the test
    /// images' size (grey or colour are converted; scores go to DIR.eval.json).
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    images: Option<PathBuf>,
    /// With --raw or --images: the samples' shape, C,H,W with H = W; the test images are read
    /// at it [default: the data's].
    #[arg(long, value_name = "C,H,W", value_parser = parse_shape)]
    shape: Option<ImageShape>,
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
    /// The test images: a folder of images or of the four MNIST-format files [default: the
    /// run's own data, else the built-in digits].
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

/// Where a model is: its checkpoint, its run folder, the data folder the run trained on and how
/// it read the images.
struct Located {
    model: PathBuf,
    dir: PathBuf,
    data: Option<PathBuf>,
    images: Option<ImageOptions>,
}

fn locate(target: &Path) -> Result<Located> {
    if target.is_dir() {
        let (data, images) = run_data(target).with_context(|| format!("{} holds no run (no readable config.json)", target.display()))?;
        Ok(Located { model: target.join("model.safetensors"), dir: target.to_path_buf(), data, images })
    } else {
        // A model file in a run folder (model-best.safetensors, say) is scored on the run's data.
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let (data, images) = run_data(&dir).unwrap_or_default();
        Ok(Located { model: target.to_path_buf(), dir, data, images })
    }
}

/// The classifier that scores samples of the data, and its features of the test images.
type Judged = Option<(Features, Vec<f64>)>;

/// "1,28,28" as a square image shape of 1 or 3 channels.
fn parse_shape(text: &str) -> std::result::Result<ImageShape, String> {
    let parts: Vec<usize> = text.split(',').map(|p| p.trim().parse::<usize>()).collect::<std::result::Result<_, _>>().map_err(|_| format!("{text}: give C,H,W as three whole numbers, e.g. 1,28,28"))?;
    match parts[..] {
        [c @ (1 | 3), h, w] if h == w && h > 0 => Ok(ImageShape { channels: c, side: h }),
        [1 | 3, _, _] => Err(format!("{text}: wgen's images are square (H = W)")),
        [_, _, _] => Err(format!("{text}: images have 1 channel (grey) or 3 (colour)")),
        _ => Err(format!("{text}: give C,H,W, e.g. 1,28,28")),
    }
}

pub fn run(gpu: &Gpu, a: &EvalArgs, quiet: bool) -> Result<i32> {
    if a.samples == 0 || a.iw_samples == 0 {
        bail!("--samples and --iw-samples must be at least 1");
    }
    let outside = a.raw.as_deref().or(a.images.as_deref());
    if a.shape.is_some() && outside.is_none() {
        bail!("--shape gives the shape of --raw or --images samples; a model knows its own");
    }
    let located = a.target.as_deref().map(locate).transpose()?;
    let model = match &located {
        Some(l) => Some(load_model(gpu, &l.model)?),
        None => None,
    };
    let mut console = Console::new(quiet, None)?;
    let shape = model.as_ref().map(|m| (m.2, "the model draws")).or(a.shape.map(|s| (s, "the samples are")));
    let (dataset, data_dir, options) = load_data(a, located.as_ref(), shape, &mut console)?;
    // Read before the judge, which may first have to be trained: bad samples fail at once.
    let samples = match (a.raw.as_deref(), a.images.as_deref()) {
        (Some(file), _) => Some(data::samples::read_raw(file, dataset.shape())?),
        (None, Some(dir)) => Some(data::samples::read_folder(dir, dataset.shape())?),
        (None, None) => None,
    };
    let mut report = serde_json::Map::new();
    report.insert("data".into(), json!(dataset.source));
    report.insert("test_images".into(), json!(dataset.test.count));
    let judged = judge(gpu, a, &dataset, data_dir.as_deref(), &options, &mut console, &mut report)?;
    if let (Some(l), Some((model, kind, _))) = (&located, model) {
        evaluate(gpu, a, l, model, &kind, &dataset, &judged, &mut console, report)?;
    } else if let (Some(path), Some(images)) = (outside, samples) {
        score_outside(gpu, path, &images, &dataset, &judged, &mut console, report)?;
    }
    console.finish();
    if a.calibrate {
        let Some((features, reference)) = &judged else { bail!("--calibrate needs a classifier for the data, and {} has none", dataset.source) };
        calibrate(gpu, a, located.as_ref(), &dataset, features, reference, &mut console)?;
    }
    Ok(0)
}

/// The model in `path`, what it is called, and the images it draws; a classifier is refused.
fn load_model(gpu: &Gpu, path: &Path) -> Result<(Loaded, String, ImageShape)> {
    let ckpt = Checkpoint::read(path)?;
    let kind = ckpt.meta("model")?.to_string();
    let model = ckpt.load(gpu)?;
    let shape = match &model {
        Loaded::Vae(vae) => vae.config.image,
        Loaded::Gan(gan) => gan.config.image,
        Loaded::Classifier(_) => bail!("{}: `wgen eval` scores a vae or a gan, not a classifier", path.display()),
    };
    Ok((model, kind, shape))
}

/// The data to score against: --data, else the run's own (read as the run read it), at the
/// shape of what is scored (the model's, or --shape's; else at the data's own), with what
/// draws that shape.
fn load_data(a: &EvalArgs, located: Option<&Located>, shape: Option<(ImageShape, &str)>, console: &mut Console) -> Result<(Dataset, Option<PathBuf>, ImageOptions)> {
    let (shape, drawn) = (shape.map(|s| s.0), shape.map_or("", |s| s.1));
    let data_dir = a.data.clone().or_else(|| located.and_then(|l| l.data.clone()));
    let own = located.and_then(|l| l.images).filter(|_| a.data.is_none());
    let options = own.or(shape.map(ImageOptions::for_shape)).unwrap_or_default();
    let dataset = data::load(data_dir.as_deref(), &options, &mut |done, total| Monitor::decoding(console, done, total))?;
    report_skipped(&dataset, console);
    if let Some(shape) = shape.filter(|&s| s != dataset.shape()) {
        bail!("{drawn} {shape} images but {} holds {} ones: pass data of their shape with --data", dataset.source, dataset.shape());
    }
    Ok((dataset, data_dir, options))
}

/// The classifier for the data (trained once where there is none), and its accuracy; for data
/// no classifier can judge, the reason, said once.
#[allow(clippy::too_many_arguments)]
fn judge(
    gpu: &Gpu, a: &EvalArgs, dataset: &Dataset, data_dir: Option<&Path>, options: &ImageOptions, console: &mut Console, report: &mut serde_json::Map<String, Value>,
) -> Result<Judged> {
    if let (Some(why), None) = (unjudged(dataset), &a.classifier) {
        console.say(&why);
        report.insert("not_scored".into(), json!(why));
        return Ok(None);
    }
    let judge = find_or_train(gpu, a.classifier.as_deref(), data_dir, options, dataset, console)?;
    let features = judge.load_for(gpu, dataset)?;
    let (reference, probs) = features.of(gpu, &dataset.test.unit_floats())?;
    let correct = probs.chunks(features.classes()).zip(&dataset.test.labels).filter(|(p, &l)| argmax(p) == usize::from(l)).count();
    let accuracy = correct as f64 / dataset.test.count as f64;
    console.say(&format!("classifier: {judge}, test accuracy {:.2}%", 100.0 * accuracy));
    report.insert("classifier".into(), json!(judge.to_string()));
    // class_shares[i] is the share of this class.
    if let Some(names) = dataset.class_names() {
        report.insert("class_names".into(), json!(names));
    }
    report.insert("classifier_test_accuracy".into(), json!(accuracy));
    Ok(Some((features, reference)))
}

/// A VAE's likelihood figures, and any model's samples scored where a classifier judges them;
/// all of it into the run's eval.json.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    gpu: &Gpu, a: &EvalArgs, l: &Located, model: Loaded, kind: &str, dataset: &Dataset, judged: &Judged, console: &mut Console,
    mut report: serde_json::Map<String, Value>,
) -> Result<()> {
    console.say(&format!("evaluating {} ({kind}) on the test split of {} ({} images)", l.model.display(), dataset.source, dataset.test.count));
    report.insert("model".into(), json!(kind));
    let step = StepBuffer::new(gpu, "eval.sample", 1);
    step.set(gpu, &Step::default());
    let draw = judged.is_some();
    let (samples, asked): (Vec<f32>, Option<Vec<usize>>) = match model {
        Loaded::Vae(vae) => {
            let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
            let s = vae_scores(gpu, &vae, &test, a.iw_samples, a.seed)?;
            console.say(&format!("test negative ELBO {:.3} nats/image (reconstruction {:.3}, KL {:.3})", s.test_neg_elbo, s.test_recon, s.test_kl));
            console.say(&format!("IWAE bound, K = {}: -log p(x) <= {:.3} nats/image = {:.4} bits/dim", s.iw_samples, s.iwae_nll, s.bits_per_dim));
            report.insert("vae".into(), serde_json::to_value(&s)?);
            let samples = if draw { sample_images(gpu, &vae, a.samples, &step, a.seed, None)? } else { Vec::new() };
            (samples, vae.config.classes.map(|k| cycling_classes(a.samples, k)))
        }
        Loaded::Gan(gan) if draw => (gan::sample_images(gpu, &gan, a.samples, &step, a.seed, None)?, gan.config.classes.map(|k| cycling_classes(a.samples, k))),
        Loaded::Gan(_) => (Vec::new(), None),
        Loaded::Classifier(_) => unreachable!("load_model refuses classifiers"),
    };
    if let Some((features, reference)) = judged {
        let s = score(features, gpu, &samples, reference, asked.as_deref())?;
        console.say(&scores_text(&format!("{kind} samples ({})", a.samples), &s, dataset));
        report.insert("samples".into(), serde_json::to_value(&s)?);
    }
    // model.safetensors's scores are the run's; another file's are named after it.
    let stem = l.model.file_stem().and_then(|s| s.to_str()).filter(|&s| s != "model");
    let path = l.dir.join(stem.map_or_else(|| "eval.json".to_string(), |s| format!("{s}.eval.json")));
    write_atomically(&path, serde_json::to_string_pretty(&Value::Object(report))?.as_bytes())?;
    console.say(&format!("wrote {}", path.display()));
    Ok(())
}

/// Samples made elsewhere (read from a raw file or a folder of images at `path`, of the data's
/// shape), scored as a model's are; the scores into `PATH.eval.json`.
fn score_outside(gpu: &Gpu, path: &Path, images: &[f32], dataset: &Dataset, judged: &Judged, console: &mut Console, mut report: serde_json::Map<String, Value>) -> Result<()> {
    let Some((features, reference)) = judged else { bail!("{} has no classifier to judge samples by; pass --classifier FILE", dataset.source) };
    let shape = dataset.shape();
    let n = images.len() / shape.values();
    console.say(&format!("scoring {n} {shape} images of {} against the test split of {} ({} images)", path.display(), dataset.source, dataset.test.count));
    let s = score(features, gpu, images, reference, None)?;
    console.say(&scores_text(&format!("samples ({n})"), &s, dataset));
    report.insert("scored".into(), json!(path.display().to_string()));
    report.insert("samples".into(), serde_json::to_value(&s)?);
    // "pngs/" names the folder, not a file inside it.
    let out = PathBuf::from(format!("{}.eval.json", path.components().collect::<PathBuf>().display()));
    write_atomically(&out, serde_json::to_string_pretty(&Value::Object(report))?.as_bytes())?;
    console.say(&format!("wrote {}", out.display()));
    Ok(())
}

/// Reference images scored against the test split: what the numbers mean.
fn calibrate(gpu: &Gpu, a: &EvalArgs, located: Option<&Located>, dataset: &Dataset, f: &Features, r: &[f64], console: &mut Console) -> Result<()> {
    let test_images = dataset.test.unit_floats();
    let image = dataset.shape().values();
    let n = a.samples.min(dataset.train.count);
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let train = dataset.train.spread_floats(n);
    let noise: Vec<f32> = (0..n * image).map(|_| rng.random::<f32>()).collect();
    let blank = vec![0.0f32; n * image];
    let one: Vec<f32> = test_images[..image].iter().copied().cycle().take(n * image).collect();
    let blurred = blur(&train, dataset.shape().side);
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
        console.say(&scores_text(name, &s, dataset));
        table.insert(name.into(), serde_json::to_value(&s)?);
    }
    let path = located.map_or_else(|| PathBuf::from("calibration.json"), |l| l.dir.join("calibration.json"));
    write_atomically(&path, serde_json::to_string_pretty(&Value::Object(table))?.as_bytes())?;
    console.say(&format!("wrote {}", path.display()));
    Ok(())
}

/// Images blurred plane by plane (side × side each) by a 5×5 binomial filter (about a Gaussian
/// of σ = 1 pixel), zeros beyond the edge: strokes as soft as a weak generator's, shapes intact.
fn blur(images: &[f32], side: usize) -> Vec<f32> {
    const TAPS: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
    let side = side as isize;
    let pass = |src: &[f32], (dy, dx): (isize, isize)| -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        for (image, dst) in src.chunks((side * side) as usize).zip(out.chunks_mut((side * side) as usize)) {
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

/// The scores' line, each class's share shown under its name where the data names its classes.
fn scores_text(name: &str, s: &SampleScores, dataset: &Dataset) -> String {
    let shares: Vec<String> = s.class_shares.iter().enumerate().map(|(c, v)| format!("{}:{:.0}%", dataset.class_label(c), 100.0 * v)).collect();
    let mut text = format!(
        "  {name:<30} FD {:>9.3}  IS {:>6.3}  classes ≥5%: {:>2}/{}  smallest {:.1}%  effective classes {:.2}  [{}]",
        s.fd,
        s.inception_score,
        s.modes,
        s.class_shares.len(),
        100.0 * s.smallest_share,
        s.effective_classes,
        shares.join(" ")
    );
    if let Some(a) = &s.agreement {
        let per: Vec<String> = a.per_class.iter().enumerate().map(|(c, v)| format!("{}:{:.0}%", dataset.class_label(c), 100.0 * v)).collect();
        text += &format!("\n  {:<30} {:.1}% of the samples are classified as the class they asked for  [{}]", "asked-for class", 100.0 * a.overall, per.join(" "));
    }
    text
}
