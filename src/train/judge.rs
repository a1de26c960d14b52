//! The classifier that scores samples (FD, IS, class coverage): the one the user names; for the
//! built-in digits, the one wgen ships in `assets/classifier/`; for any other data, one trained
//! once for that data set and kept in the cache folder under the data's fingerprint.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{cache_dir, Monitor, ModelKind, TrainConfig};
use crate::data::{self, Classes, Dataset, ImageOptions};
use crate::eval::Features;
use crate::gpu::Gpu;
use crate::train::checkpoint::{Checkpoint, Loaded};

/// `wgen train classifier --epochs 15 --seed 0` on the built-in digits (assets/classifier/README.md).
const SHIPPED: &[u8] = include_bytes!("../../assets/classifier/model.safetensors");

/// Epochs of a classifier trained for a data set that has none.
const CACHED_EPOCHS: u32 = 15;

/// Where a classifier comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Judge {
    Given(PathBuf),
    Shipped,
    Cached(PathBuf),
}

impl Judge {
    /// The classifier, checked to read `dataset`'s images and classes.
    pub fn load_for(&self, gpu: &Gpu, dataset: &Dataset) -> Result<Features> {
        let features = self.load(gpu)?;
        let (image, classes) = (features.image(), features.classes());
        if image != dataset.shape() || classes != data_classes(dataset) {
            bail!("{self} reads {image} images of {classes} classes, but {} holds {} images of {}: pass a classifier trained on this data", dataset.source, dataset.shape(), data_classes(dataset));
        }
        Ok(features)
    }

    pub fn load(&self, gpu: &Gpu) -> Result<Features> {
        let ckpt = match self {
            Judge::Given(path) | Judge::Cached(path) => Checkpoint::read(path)?,
            Judge::Shipped => Checkpoint::from_bytes(SHIPPED, "the built-in classifier".to_string())?,
        };
        match ckpt.load(gpu)? {
            Loaded::Classifier(c) => Features::new(gpu, c),
            _ => bail!("{} is a {}, not a classifier; train one with `wgen train classifier`", ckpt.path, ckpt.meta("model")?),
        }
    }

    /// The path a run's config records, None for the shipped one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Judge::Given(p) | Judge::Cached(p) => Some(p),
            Judge::Shipped => None,
        }
    }
}

impl std::fmt::Display for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Judge::Given(p) => write!(f, "{}", p.display()),
            Judge::Shipped => write!(f, "the built-in digit classifier"),
            Judge::Cached(p) => write!(f, "{} (trained for this data)", p.display()),
        }
    }
}

/// The classifier for `dataset`: `given`, else the shipped one when the data are the built-in
/// digits (from any folder), else the one cached for this data; None when there is none yet.
pub fn find(given: Option<&Path>, dataset: &Dataset) -> Result<Option<Judge>> {
    if let Some(path) = given {
        return Ok(Some(Judge::Given(path.to_path_buf())));
    }
    if unjudged(dataset).is_some() {
        return Ok(None);
    }
    let fingerprint = dataset.fingerprint();
    if fingerprint == data::builtin().fingerprint() {
        return Ok(Some(Judge::Shipped));
    }
    Ok(cached_model(&fingerprint).filter(|p| p.is_file()).map(Judge::Cached))
}

/// As `find`, but trains (and caches) a classifier for data that have none.
pub fn find_or_train(gpu: &Gpu, given: Option<&Path>, data_dir: Option<&Path>, images: &ImageOptions, dataset: &Dataset, monitor: &mut dyn Monitor) -> Result<Judge> {
    if let Some(judge) = find(given, dataset)? {
        return Ok(judge);
    }
    if let Some(why) = unjudged(dataset) {
        bail!("{why}: leave out --eval-every");
    }
    let fingerprint = dataset.fingerprint();
    let model = cached_model(&fingerprint).context("no cache folder (set HOME or XDG_CACHE_HOME), so no classifier can be kept: pass --classifier")?;
    let folder = model.parent().expect("a cached model has a folder");
    let partial = folder.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    monitor.say(&format!(
        "{} has no classifier yet: training one ({CACHED_EPOCHS} epochs), kept in {} for next time",
        dataset.source,
        folder.display()
    ));
    let defaults = TrainConfig::defaults(ModelKind::Classifier);
    let cfg = TrainConfig {
        epochs: CACHED_EPOCHS,
        batch: defaults.batch.min(dataset.train.count),
        data: data_dir.map(Path::to_path_buf),
        images: *images,
        out: partial.clone(),
        checkpoint_every: 0,
        ..defaults
    };
    super::train(gpu, &cfg, monitor)?;
    // Another process may have finished first; either copy serves.
    if std::fs::rename(&partial, folder).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    if !model.is_file() {
        bail!("could not keep the new classifier in {}", folder.display());
    }
    Ok(Judge::Cached(model))
}

/// Why no classifier can score samples of this data, if none can: one learns from labels.
pub fn unjudged(dataset: &Dataset) -> Option<String> {
    (!dataset.labelled()).then(|| format!("{} is unlabelled (a flat folder), so no classifier can be trained to score its samples (FD, IS, classes)", dataset.source))
}

/// The logits a classifier of `dataset` has: a folder's classes, or the ten digits of IDX files.
pub fn data_classes(dataset: &Dataset) -> usize {
    match &dataset.classes {
        Classes::Named(names) => names.len(),
        _ => crate::models::classifier::DIGITS,
    }
}

/// Under `classifiers/cnn/`: the MLP classifiers of earlier versions, kept directly under
/// `classifiers/`, are never picked up again.
fn cached_model(fingerprint: &str) -> Option<PathBuf> {
    Some(cache_dir()?.join("classifiers").join("cnn").join(fingerprint).join("model.safetensors"))
}

/// FD of 5,000 real training digits against the test digits by the shipped judge (`wgen eval
/// --calibrate`): the floor a generator's FD falls towards.
pub const SHIPPED_FLOOR_FD: f64 = 7.2;

/// A run's last scores beside what they can be compared with, for runs on the built-in digits
/// scored by the shipped judge: the real digits' floor, and what the model's default recipe
/// reaches in the README's table. None for other data or judges, whose figures are unknown.
pub fn in_context(cfg: &TrainConfig, record: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    if cfg.data.is_some() || cfg.classifier_path.is_some() {
        return None;
    }
    let get = |k: &str| record.get(k).and_then(serde_json::Value::as_f64);
    let (fd, epoch, modes) = (get("fd")?, get("epoch")?, get("modes")?);
    let conditional = cfg.gan.as_ref().and_then(|g| g.classes).is_some();
    let recipe = match cfg.model {
        ModelKind::Gan if conditional => Some("the conditional GAN's default recipe reaches FD 32 at epoch 50"),
        ModelKind::Gan => Some("the MLP GAN's default recipe reaches FD 35–38 at epoch 50 on seeds 0–2"),
        ModelKind::Dcgan => Some("the DCGAN's default recipe reaches FD 118–122 at epoch 30"),
        ModelKind::ConvVae => Some("the conv VAE's default recipe reaches FD 233–271 at epoch 10"),
        ModelKind::Vae | ModelKind::Classifier => None,
    };
    let mut line = format!("FD {fd:.1} at epoch {epoch}, {modes} of 10 digits at ≥ 5% of the samples: lower FD is nearer the data, where real training digits score {SHIPPED_FLOOR_FD}");
    if let Some(recipe) = recipe {
        line += &format!(" and {recipe} (README, \"The models\")");
    }
    Some(line)
}
