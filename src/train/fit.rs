//! Fitting a run's settings to its data: the image shape, the batch, the classes.

use anyhow::{bail, Result};

use super::{judge, ModelKind, TrainConfig};
use crate::data;
use crate::models::gan::EXAMPLES_LR;

/// Fits `cfg` to `dataset` (a resumed run: checks that the data still fits it) and returns a
/// line for each default it changed to fit.
pub fn fit_to_data(cfg: &mut TrainConfig, dataset: &data::Dataset, resumed: bool) -> Result<Vec<String>> {
    shape_to(cfg, dataset, resumed)?;
    let notes = fit_batch(cfg, dataset, resumed)?.into_iter().collect();
    if cfg.conditional {
        condition_on(cfg, dataset)?;
    }
    Ok(notes)
}

/// Gives a new run's model the data's image shape, or checks that a resumed run's data still
/// has the shape it was trained on; refuses data a model cannot take.
pub fn shape_to(cfg: &mut TrainConfig, dataset: &data::Dataset, resumed: bool) -> Result<()> {
    let shape = dataset.shape();
    let conv = matches!(cfg.model, ModelKind::ConvVae | ModelKind::Dcgan);
    if conv && !shape.side.is_multiple_of(4) {
        bail!("the {} halves the image twice, so it takes sides that are multiples of 4; {} holds {shape} images: pass --size 28 or --size 32", cfg.model.name(), dataset.source);
    }
    if cfg.conditional && !dataset.labelled() {
        bail!("--conditional needs labels, and {} is a flat folder: put each class's images in a subfolder of its own", dataset.source);
    }
    if let Some(c) = cfg.classifier.as_mut() {
        if !dataset.labelled() {
            bail!("a classifier learns from labels, and {} is a flat folder: put each class's images in a subfolder of its own", dataset.source);
        }
        if resumed && (c.image, c.classes) != (shape, judge::data_classes(dataset)) {
            bail!("this classifier was trained on {} images of {} classes, but {} now gives other ones (has the folder changed?)", c.image, c.classes, dataset.source);
        }
        (c.image, c.classes) = (shape, judge::data_classes(dataset));
    }
    let image = match (&mut cfg.vae, &mut cfg.gan) {
        (Some(v), _) => &mut v.image,
        (_, Some(g)) => &mut g.image,
        _ => return Ok(()),
    };
    if resumed && *image != shape {
        bail!("this run was trained on {} images, but {} now gives {shape} ones (has the folder changed?)", *image, dataset.source);
    }
    *image = shape;
    // pytorch/examples' DCGAN at pytorch/examples' rates, unless given (a resumed run keeps
    // the rates it was started with).
    if let Some(g) = cfg.gan.as_mut().filter(|g| g.is_examples() && !resumed) {
        if !cfg.given.lr {
            cfg.adam.lr = EXAMPLES_LR;
        }
        if !cfg.given.d_lr {
            g.d_lr = Some(EXAMPLES_LR);
        }
    }
    Ok(())
}

/// A batch the user gave (or a resumed run's) must fit the training split; the default
/// shrinks to fit a smaller one, and the note returned says so.
fn fit_batch(cfg: &mut TrainConfig, dataset: &data::Dataset, resumed: bool) -> Result<Option<String>> {
    let count = dataset.train.count;
    if cfg.batch <= count {
        return Ok(None);
    }
    if cfg.given.batch || resumed {
        bail!("--batch {} is larger than the {count} training images of {}", cfg.batch, dataset.source);
    }
    let default = cfg.batch;
    cfg.batch = count;
    Ok(Some(format!("batch {count}: the {count} training images of {} are fewer than the default batch of {default}", dataset.source)))
}

/// Sets the model's class count from the data (a new run), or checks that the data's labels
/// are among the classes the run was trained on (a resumed one).
fn condition_on(cfg: &mut TrainConfig, dataset: &data::Dataset) -> Result<()> {
    let (classes, names) = match (&mut cfg.vae, &mut cfg.gan) {
        (Some(v), _) => (&mut v.classes, &mut v.class_names),
        (_, Some(g)) => (&mut g.classes, &mut g.class_names),
        _ => bail!("--conditional is for the generative models"),
    };
    let k = *classes.get_or_insert(dataset.train.classes());
    if names.is_none() {
        *names = dataset.class_names().map(|n| n[..k.min(n.len())].to_vec());
    }
    for (name, split) in [("training", &dataset.train), ("test", &dataset.test)] {
        if let Some(&label) = split.labels.iter().find(|&&l| usize::from(l) >= k) {
            bail!(
                "{} has a {name} label {label}, but this conditional model knows classes 0–{}: the training split's labels decide the classes",
                dataset.source,
                k - 1
            );
        }
    }
    Ok(())
}

/// Keeps `n` of the training images, spread evenly over the classes (`--limit`), and says so;
/// returns the whole training split.
pub fn limit_training(dataset: &mut data::Dataset, n: usize, monitor: &mut dyn super::Monitor) -> data::Split {
    let kept = dataset.train.spread_over_classes(n);
    let whole = dataset.train.count;
    monitor.say(&format!("training on {} of the {whole} training images, spread over the classes (--limit {n}); tested and judged on all of the data", kept.count));
    std::mem::replace(&mut dataset.train, kept)
}
