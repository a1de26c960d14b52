//! `wgen sample`: images from a trained model (random grids, VAE reconstructions, latent or
//! noise interpolations, the 2-D latent manifold) and a run's per-epoch grids side by side.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::data::{self, DeviceSplit, ImageOptions, ImageShape};
use crate::gpu::{Gpu, Region};
use crate::image;
use crate::models::{self, cycling_classes, gan, vae};
use crate::models::gan::{Gan, GanSampler, G_EMBEDDING};
use crate::models::vae::{pixel, Vae, VaeGraph, VaeSampler, PRIOR_MEAN};
use crate::nn::{Step, StepBuffer};
use crate::train::checkpoint::{write_atomically, Checkpoint, Loaded};

mod latent;

use latent::{interpolations, manifold};

#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    /// A model.safetensors written by `wgen train` (not needed with --progression).
    #[arg(required_unless_present = "progression")]
    model: Option<PathBuf>,
    /// How many images [default: 64, or rows × cols when both are given]. A conditional
    /// model's image i then asks for class i mod K (a grid column per class), as `wgen eval`
    /// draws its samples.
    #[arg(long)]
    n: Option<usize>,
    /// Grid rows [default: as many as the images need].
    #[arg(long)]
    rows: Option<usize>,
    /// Grid columns [default: the square root of n, rounded up].
    #[arg(long)]
    cols: Option<usize>,
    /// Black pixels between and around the images.
    #[arg(long, default_value_t = 2)]
    pad: usize,
    /// Repeat each pixel this many times in both directions (3: an 8×8 grid is 690 px wide).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=32))]
    scale: u16,
    /// Write the grid here [default: samples.png unless --raw is given].
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Write the images as [N, C, H, W] little-endian f32 in [0, 1], row-major, no header
    /// (N×784 for 28×28 grey digits).
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Conditional runs: every image asks for this class, by number or, for a model trained
    /// on a folder's classes, by its subfolder's name [default: one grid row per class].
    #[arg(long, value_name = "K|NAME", conflicts_with_all = ["recon", "progression"])]
    class: Option<String>,
    /// VAE: test images (odd rows) over their reconstructions from the posterior mean.
    #[arg(long, conflicts_with_all = ["interpolate", "manifold", "progression"])]
    recon: bool,
    /// Each row interpolates between a random pair: the VAE's latent space (linearly) or the
    /// GAN's noise (spherically). Conditional runs without --class keep each row's noise and
    /// move from class r to class r + 1 instead: the style stays, the digit changes.
    #[arg(long, conflicts_with_all = ["manifold", "progression"])]
    interpolate: bool,
    /// VAE trained with --z-dim 2: decode an even grid of the latent plane's quantiles.
    #[arg(long, conflicts_with = "progression")]
    manifold: bool,
    /// One PNG of a run's per-epoch sample grids, in order [output: RUN_DIR/progression.png].
    #[arg(long, value_name = "RUN_DIR")]
    progression: Option<PathBuf>,
    /// Leave a conditional model's grid of a row per class without its class names on the left.
    #[arg(long)]
    no_labels: bool,
    /// With --recon: the folder whose test images to reconstruct [default: the data of the run
    /// the model is in, else the built-in digits].
    #[arg(long)]
    data: Option<PathBuf>,
}

enum Model {
    Vae(Vae),
    Gan(Gan),
}

impl Model {
    /// The class count of a conditional model.
    /// Refuses more images than one pass of this model can hold on this adapter.
    fn check_rows(&self, gpu: &Gpu, n: usize) -> Result<()> {
        let most = match self {
            Model::Vae(v) => v.max_rows(gpu),
            Model::Gan(g) => g.max_rows(gpu),
        };
        if n > most {
            bail!("{n} images is more than this model decodes from chosen inputs at once on this adapter ({most}: its widest layer must fit one storage binding); ask for a smaller grid with --rows and --cols");
        }
        Ok(())
    }

    /// The images it draws.
    fn shape(&self) -> ImageShape {
        match self {
            Model::Vae(v) => v.config.image,
            Model::Gan(g) => g.config.image,
        }
    }

    fn classes(&self) -> Option<usize> {
        match self {
            Model::Vae(v) => v.config.classes,
            Model::Gan(g) => g.config.classes,
        }
    }

    /// The names of its classes, where it was trained on a folder's.
    fn class_names(&self) -> Option<&[String]> {
        match self {
            Model::Vae(v) => v.config.class_names.as_deref(),
            Model::Gan(g) => g.config.class_names.as_deref(),
        }
    }

    /// Each class's vector as the model's first layer reads it: a conditional GAN's learned
    /// generator embedding rows, a CVAE's one-hots.
    fn class_vectors(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>> {
        let Some(k) = self.classes() else { return Ok(Vec::new()) };
        Ok(match self {
            Model::Vae(_) => (0..k).map(|c| (0..k).map(|j| if j == c { 1.0 } else { 0.0 }).collect()).collect(),
            Model::Gan(gan) => {
                let table = gan.params.layout.get(G_EMBEDDING);
                let values = gan.params.values.read(gpu)?;
                values[table.range()].chunks(k).map(<[f32]>::to_vec).collect()
            }
        })
    }
}

/// The class asked for by --class (a number, or a name the model keeps), checked against the
/// model's classes.
fn asked_class(a: &SampleArgs, model: &Model, path: &Path) -> Result<Option<usize>> {
    let (Some(asked), k) = (a.class.as_deref(), model.classes()) else { return Ok(None) };
    let Some(k) = k else { bail!("--class needs a conditional model; {} was trained without --conditional", path.display()) };
    let names = model.class_names().unwrap_or_default();
    let known = match names {
        [] => format!("classes 0–{}", k - 1),
        _ => format!("classes {} (or 0–{})", names.join(", "), k - 1),
    };
    match asked.parse::<usize>() {
        Ok(c) if c < k => Ok(Some(c)),
        Ok(c) => bail!("--class {c}: {} knows {known}", path.display()),
        Err(_) => match names.iter().position(|n| n == asked) {
            Some(c) => Ok(Some(c)),
            None => bail!("--class {asked}: {} knows {known}", path.display()),
        },
    }
}

fn load(gpu: &Gpu, path: &Path) -> Result<Model> {
    Ok(match Checkpoint::read(path)?.load(gpu)? {
        Loaded::Vae(v) => Model::Vae(v),
        Loaded::Gan(g) => Model::Gan(g),
        Loaded::Classifier(_) => bail!("{} is a classifier; `wgen sample` draws from a vae or a gan", path.display()),
    })
}

/// `rows` × `cols` unless --n, --rows or --cols is given.
fn layout_or(a: &SampleArgs, rows: usize, cols: usize) -> Result<(usize, usize)> {
    if a.rows.is_none() && a.cols.is_none() && a.n.is_none() {
        return Ok((rows, cols));
    }
    layout(a, rows * cols)
}

/// A conditional model's grid: a row per class and 10 columns, each overridable on its own
/// (--n lays out that many images instead).
fn class_layout(a: &SampleArgs, k: usize) -> Result<(usize, usize)> {
    if a.n.is_some() {
        return layout(a, 0);
    }
    let (rows, cols) = (a.rows.unwrap_or(k), a.cols.unwrap_or(10));
    if rows == 0 || cols == 0 {
        bail!("--rows and --cols must be at least 1");
    }
    Ok((rows, cols))
}

/// (rows, cols) of the grid for `default_n` images unless --n/--rows/--cols say otherwise.
fn layout(a: &SampleArgs, default_n: usize) -> Result<(usize, usize)> {
    let (rows, cols) = match (a.rows, a.cols, a.n) {
        (Some(r), Some(c), _) => (r, c),
        (Some(r), None, n) => (r, n.unwrap_or(default_n).div_ceil(r.max(1))),
        (None, Some(c), n) => (n.unwrap_or(default_n).div_ceil(c.max(1)), c),
        (None, None, n) => {
            let n = n.unwrap_or(default_n);
            let c = (n as f64).sqrt().ceil() as usize;
            (n.div_ceil(c.max(1)), c)
        }
    };
    if rows == 0 || cols == 0 {
        bail!("--n, --rows and --cols must be at least 1");
    }
    Ok((rows, cols))
}

pub fn run(gpu: &Gpu, a: &SampleArgs, quiet: bool) -> Result<i32> {
    if let Some(dir) = &a.progression {
        return progression(a, dir, quiet);
    }
    let path = a.model.as_ref().expect("clap requires a model unless --progression");
    let model = load(gpu, path)?;
    let step = StepBuffer::new(gpu, "sample", 1);
    step.set(gpu, &Step::default());
    let (images, cols) = if a.recon {
        let Model::Vae(vae) = &model else { bail!("--recon needs a VAE; {} is a GAN", path.display()) };
        let (rows, cols) = layout_or(a, 8, 8)?;
        reconstructions(gpu, vae, a, (rows * cols).div_ceil(2).max(1), cols, &step)?
    } else if a.interpolate {
        interpolations(gpu, a, &model, path, &step)?
    } else if a.manifold {
        manifold(gpu, a, &model, path, &step)?
    } else {
        draw(gpu, a, &model, path, &step)?
    };
    let rows = (images.len() / model.shape().values()).div_ceil(cols.max(1));
    write(a, &images, model.shape(), cols, row_labels(a, &model, rows).as_deref(), quiet)
}

/// The names of a grid's `rows`: for a conditional model's default grid, row r asks for class
/// r mod k (`draw`), named by its folder or number; None for every other grid or --no-labels.
fn row_labels(a: &SampleArgs, model: &Model, rows: usize) -> Option<Vec<String>> {
    let k = model.classes()?;
    let default_grid = !(a.recon || a.interpolate || a.manifold || a.no_labels) && a.class.is_none() && a.n.is_none();
    default_grid.then(|| (0..rows).map(|r| models::class_label(model.class_names(), r % k)).collect())
}

/// The default: a grid of samples (conditioned: a row per class, or all of --class).
fn draw(gpu: &Gpu, a: &SampleArgs, model: &Model, path: &Path, step: &StepBuffer) -> Result<(Vec<f32>, usize)> {
    let class = asked_class(a, model, path)?;
    let (rows, cols) = match (model.classes(), class, a.n) {
        // A column per class, as the classes cycle below.
        (Some(k), None, Some(n)) if a.rows.is_none() => layout(&SampleArgs { cols: a.cols.or(Some(k)), ..a.clone() }, n)?,
        (Some(k), None, _) => class_layout(a, k)?,
        _ => layout(a, 64)?,
    };
    let n = a.n.unwrap_or(rows * cols);
    // --class for all; --n: image i asks for class i mod k, as `wgen eval` draws them, so
    // `--raw` of the same n and seed scores as `wgen eval` does; else grid row r asks for class
    // r mod k.
    let asked: Option<Vec<usize>> = match (model.classes(), class) {
        (_, Some(c)) => Some(vec![c; n]),
        (Some(k), None) if a.n.is_some() => Some(cycling_classes(n, k)),
        (Some(k), None) => Some((0..n).map(|i| i / cols % k).collect()),
        (None, None) => None,
    };
    // In chunks that fit the adapter's bindings: any n, and n below one chunk is one draw.
    let images = match model {
        Model::Vae(vae) => vae::sample_images(gpu, vae, n, step, a.seed, asked.as_deref())?,
        Model::Gan(gan) => gan::sample_images(gpu, gan, n, step, a.seed, asked.as_deref())?,
    };
    Ok((images, cols))
}

fn rows_of(gpu: &Gpu, region: &Region, n: usize, f: impl Fn(f32) -> f32) -> Result<Vec<f32>> {
    Ok(region.read_rows(gpu, n, f)?)
}

/// Row by row, `a`'s rows of `wa` values, then `b`'s of `wb`, then zeros to `width`.
fn side_by_side(a: &[f32], wa: usize, b: &[f32], wb: usize, n: usize, width: usize) -> Vec<f32> {
    let pad = width - wa - wb;
    (0..n).flat_map(|r| a[r * wa..(r + 1) * wa].iter().chain(&b[r * wb..(r + 1) * wb]).copied().chain(std::iter::repeat_n(0.0, pad))).collect()
}

/// Decodes host-chosen latent vectors (or GAN noise) `z` [n, dim] and, for a conditional
/// model, each row's class vector `cond` [n, k] (blends allowed).
fn decode(gpu: &Gpu, model: &Model, z: &[f32], cond: &[f32], n: usize, step: &StepBuffer) -> Result<Vec<f32>> {
    model.check_rows(gpu, n)?;
    let k = model.classes().unwrap_or(0);
    if cond.len() != n * k {
        bail!("a conditional model needs a class for every image (--class K)");
    }
    match model {
        Model::Vae(vae) => {
            let s = VaeSampler::new(gpu, vae, n, &step.uniform, 0)?;
            let latent = vae.config.latent;
            // With class prior means, z is an offset from the (blended) classes' mean: the
            // one-hot blend weighs the means as it weighs the classes.
            let z: Vec<f32> = match vae.params.layout.find(PRIOR_MEAN) {
                Some(e) => {
                    let means = e.export(&vae.params.values.read(gpu)?);
                    let means = &means;
                    z.chunks(latent)
                        .zip(cond.chunks(k))
                        .flat_map(|(zr, w)| (0..latent).map(move |j| zr[j] + w.iter().enumerate().map(|(c, wc)| wc * means[c * latent + j]).sum::<f32>()))
                        .collect()
                }
                None => z.to_vec(),
            };
            s.input.write(gpu, &side_by_side(&z, latent, cond, k, n, s.input.view().cols));
            s.decode.run(gpu, "decode");
            rows_of(gpu, s.decoder.output(), n, pixel)
        }
        Model::Gan(gan) => {
            let s = GanSampler::new(gpu, gan, n, &step.uniform, 0)?;
            s.input.write(gpu, &side_by_side(cond, k, z, gan.config.latent, n, s.input.view().cols));
            s.decode.run(gpu, "decode");
            let out = gan.config.output;
            rows_of(gpu, s.generator.output(), n, |v| out.to_unit(v))
        }
    }
}

/// `n` test images and their reconstructions, interleaved by rows of `cols`.
fn reconstructions(gpu: &Gpu, vae: &Vae, a: &SampleArgs, n: usize, cols: usize, step: &StepBuffer) -> Result<(Vec<f32>, usize)> {
    let path = a.model.as_deref().expect("--recon has a model");
    // The run's own data, read as the run read it, unless --data names other.
    let run = path.parent().and_then(super::run_data).filter(|_| a.data.is_none());
    let (dir, options) = match run {
        Some((dir, options)) => (dir, options.unwrap_or(ImageOptions::for_shape(vae.config.image))),
        None => (a.data.clone(), ImageOptions::for_shape(vae.config.image)),
    };
    let dataset = data::load(dir.as_deref(), &options, &mut |_, _| {})?;
    if dataset.shape() != vae.config.image {
        bail!("the model draws {} images but {} holds {} ones: pass the data it was trained on with --data", vae.config.image, dataset.source, dataset.shape());
    }
    let n = n.min(dataset.test.count);
    let test = DeviceSplit::upload(gpu, "test", &dataset.test)?;
    let graph = VaeGraph::new(gpu, vae, n, "recon")?;
    graph.reconstruct_program(gpu, vae, &test, &step.uniform).run(gpu, "recon");
    let originals = rows_of(gpu, &graph.x.region(), n, |v| v)?;
    let recons = rows_of(gpu, graph.decoder.output(), n, pixel)?;
    Ok((image::interleave_rows(&originals, &recons, cols, vae.config.image.values()), cols))
}

fn write(a: &SampleArgs, images: &[f32], shape: ImageShape, cols: usize, labels: Option<&[String]>, quiet: bool) -> Result<i32> {
    let n = images.len() / shape.values();
    if let Some(raw) = &a.raw {
        let bytes: Vec<u8> = images.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_atomically(raw, &bytes)?;
        if !quiet {
            println!("wrote {n} images to {}", raw.display());
        }
    }
    if let Some(path) = a.grid.clone().or_else(|| a.raw.is_none().then(|| PathBuf::from("samples.png"))) {
        let grid = image::labelled_grid(images, shape, cols, a.pad, usize::from(a.scale), labels);
        image::write_png(&path, &grid)?;
        let (w, h) = (grid.width, grid.height);
        if !quiet {
            println!("wrote a {w}×{h} grid of {n} images to {}", path.display());
        }
    }
    Ok(0)
}

/// The run's `samples/epoch-*.png` side by side, in epoch order.
fn progression(a: &SampleArgs, dir: &Path, quiet: bool) -> Result<i32> {
    let samples = dir.join("samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .with_context(|| format!("{} has no samples/ folder; is it a wgen run?", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("epoch-") && n.ends_with(".png")))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no epoch-*.png grids yet", samples.display());
    }
    let pictures = files.iter().map(|f| image::read_png(f)).collect::<Result<Vec<_>>>()?;
    let tiled = image::tile(&pictures, a.cols.unwrap_or(10), 8);
    let (w, h) = (tiled.width, tiled.height);
    let out = a.grid.clone().unwrap_or_else(|| dir.join("progression.png"));
    image::write_png(&out, &tiled)?;
    if !quiet {
        println!("wrote {} epoch grids ({w}×{h}) to {}", files.len(), out.display());
    }
    Ok(0)
}
