//! Quality numbers: a VAE's test ELBO and importance-weighted log-likelihood bound, computed on
//! the GPU; and, for samples of either model, the Fréchet distance and Inception Score in the
//! feature space of wgen's own digit classifier, with the share of each predicted class, the
//! smallest share and the effective number of classes.

use anyhow::Result;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::data::DeviceSplit;
use crate::gpu::{Gpu, Program, Tensor};
use crate::models::classifier::{Classifier, ClassifierGraph};
use crate::models::vae::{Vae, VaeGraph, METRIC_SLOTS, TEST_KL, TEST_RECON};
use crate::nn::{submit_steps, Step, StepBuffer};

/// Evaluation over a split in chunks (see `eval_chunks`): a graph and program per chunk size.
pub struct EvalParts<G> {
    pub parts: Vec<(G, Program, Vec<Step>)>,
    steps: StepBuffer,
}

impl<G> EvalParts<G> {
    /// Builds a graph and its program for each chunk size, on a step buffer of their own.
    pub fn new(gpu: &Gpu, label: &str, count: usize, mut build: impl FnMut(usize, &wgpu::Buffer) -> Result<(G, Program)>) -> Result<EvalParts<G>> {
        let chunks = eval_chunks(count);
        let steps = StepBuffer::new(gpu, label, chunks[0].1.len());
        let parts = chunks
            .into_iter()
            .map(|(rows, chunks)| build(rows, &steps.uniform).map(|(g, p)| (g, p, chunks)))
            .collect::<Result<_>>()?;
        Ok(EvalParts { parts, steps })
    }

    /// Submits every chunk; the results land in the programs' metrics.
    pub fn submit(&self, gpu: &Gpu) {
        for (_, program, chunks) in &self.parts {
            submit_steps(gpu, program, &self.steps, chunks);
        }
    }
}

/// Images per evaluation chunk.
pub const EVAL_CHUNK: usize = 500;

/// How to cover `count` test images in chunks: (rows, the Steps selecting each chunk) for
/// the full chunks and, when the count does not divide, one remainder chunk. Each chunk's
/// noise is keyed by its index, so every epoch sees the same noise per image.
pub fn eval_chunks(count: usize) -> Vec<(usize, Vec<Step>)> {
    let size = EVAL_CHUNK.min(count);
    let (full, rest) = (count / size, count % size);
    let chunk = |c: usize| Step { t: 1, rng_step: c as u32, batch_start: (c * size) as u32, ..Step::default() };
    [(size, (0..full).map(chunk).collect::<Vec<_>>()), (rest, vec![chunk(full)])]
        .into_iter()
        .filter(|(rows, chunks)| *rows > 0 && !chunks.is_empty())
        .collect()
}

/// Images a classifier pass takes at once.
const CHUNK: usize = 500;

/// The classifier's features (last hidden layer) and class probabilities of any images.
pub struct Features {
    pub classifier: Classifier,
    graph: ClassifierGraph,
    program: Program,
}

impl Features {
    pub fn new(gpu: &Gpu, classifier: Classifier) -> Result<Features> {
        let graph = ClassifierGraph::new(gpu, &classifier, CHUNK, "features", false)?;
        let program = graph.features_program(gpu, &classifier);
        Ok(Features { classifier, graph, program })
    }

    /// (features [n, width], probabilities [n, classes]) of images [n, C·H·W] in [0, 1].
    pub fn of(&self, gpu: &Gpu, images: &[f32]) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut features, mut probs) = (Vec::new(), Vec::new());
        let image = self.classifier.config.image.values();
        for chunk in images.chunks(CHUNK * image) {
            let rows = chunk.len() / image;
            self.graph.x.write(gpu, chunk);
            self.program.run(gpu, "features");
            features.extend(self.graph.features().read_rows(gpu, rows, |v| v)?.into_iter().map(f64::from));
            probs.extend(self.graph.probs.region().read_rows(gpu, rows, |v| v)?.into_iter().map(f64::from));
        }
        Ok((features, probs))
    }

    pub fn width(&self) -> usize {
        self.classifier.feature_width()
    }

    pub fn classes(&self) -> usize {
        self.classifier.config.classes
    }

    /// The images it reads.
    pub fn image(&self) -> crate::data::ImageShape {
        self.classifier.config.image
    }
}

fn moments(x: &[f64], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.len() / dim;
    let data = DMatrix::from_row_slice(n, dim, x);
    let mean = DVector::from_iterator(dim, (0..dim).map(|j| data.column(j).mean()));
    let centred = DMatrix::from_fn(n, dim, |i, j| data[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n.max(2) - 1) as f64;
    (mean, cov)
}

/// |μ1 - μ2|² + tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½), with tr (Σ1 Σ2)^½ taken as the sum of the square
/// roots of the eigenvalues of the symmetric Σ1^½ Σ2 Σ1^½ (they are the same), in f64.
///
/// Features with no variance in either set (a judge's dead ReLUs: 169 of 256 for the emoji
/// judge) count in the mean term only. Left in, they made nalgebra's symmetric eigen-solver
/// return NaN on that judge's covariances, which `max(0.0)` turned into zeros, and the FD came
/// out as the bare traces (1,123 where numpy's eigh gives 35). A NaN now stays NaN.
pub fn frechet_from_moments(mu1: &DVector<f64>, s1: &DMatrix<f64>, mu2: &DVector<f64>, s2: &DMatrix<f64>) -> f64 {
    let live: Vec<usize> = (0..s1.nrows()).filter(|&j| s1[(j, j)] > 0.0 || s2[(j, j)] > 0.0).collect();
    let (s1, s2) = (s1.select_rows(&live).select_columns(&live), s2.select_rows(&live).select_columns(&live));
    // Rounding leaves tiny negative eigenvalues of these semi-definite matrices: read as 0.
    let root = |v: f64| if v < 0.0 { 0.0 } else { v.sqrt() };
    let e = SymmetricEigen::new(s1.clone());
    let r1 = &e.eigenvectors * DMatrix::from_diagonal(&e.eigenvalues.map(root)) * e.eigenvectors.transpose();
    let middle = &r1 * &s2 * &r1;
    let middle = (&middle + middle.transpose()) / 2.0;
    let tr_root: f64 = SymmetricEigen::new(middle).eigenvalues.iter().map(|&v| root(v)).sum();
    (mu1 - mu2).norm_squared() + s1.trace() + s2.trace() - 2.0 * tr_root
}

/// The Fréchet distance between two sets of `dim`-wide features.
pub fn frechet_distance(a: &[f64], b: &[f64], dim: usize) -> f64 {
    let (m1, s1) = moments(a, dim);
    let (m2, s2) = moments(b, dim);
    frechet_from_moments(&m1, &s1, &m2, &s2)
}

/// exp(E_x KL(p(y|x) || p(y))) over rows of class probabilities.
pub fn inception_score(probs: &[f64], classes: usize) -> f64 {
    let n = probs.len() / classes;
    let marginal: Vec<f64> = (0..classes).map(|c| (0..n).map(|i| probs[i * classes + c]).sum::<f64>() / n as f64).collect();
    let kl: f64 = (0..n)
        .map(|i| {
            (0..classes)
                .map(|c| {
                    let p = probs[i * classes + c];
                    if p > 0.0 {
                        p * (p.ln() - marginal[c].max(1e-300).ln())
                    } else {
                        0.0
                    }
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64;
    kl.exp()
}

/// The first index of the largest value.
pub fn argmax(row: &[f64]) -> usize {
    row.iter().enumerate().fold(0, |b, (c, &p)| if p > row[b] { c } else { b })
}

/// The share of images whose most probable class is each class.
pub fn class_shares(probs: &[f64], classes: usize) -> Vec<f64> {
    let n = probs.len() / classes;
    let mut counts = vec![0usize; classes];
    for row in probs.chunks(classes) {
        counts[argmax(row)] += 1;
    }
    counts.iter().map(|&c| c as f64 / n.max(1) as f64).collect()
}

/// exp of the entropy of the class shares: 10 for ten equal classes, 1 for one, and between
/// them how many equal classes would be as spread; one weak class moves it where a 5% count
/// does not.
pub fn effective_classes(shares: &[f64]) -> f64 {
    shares.iter().filter(|&&s| s > 0.0).map(|&s| -s * s.ln()).sum::<f64>().exp()
}

/// The smallest class share (∞ for none).
pub fn smallest_share(shares: &[f64]) -> f64 {
    shares.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Scores of a set of images against reference features.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SampleScores {
    pub fd: f64,
    pub inception_score: f64,
    pub class_shares: Vec<f64>,
    /// Classes with at least 5% of the images.
    pub modes: usize,
    /// The smallest class share.
    pub smallest_share: f64,
    /// `effective_classes` of the shares.
    pub effective_classes: f64,
    /// Conditional models: how often the classifier names the class each sample asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<ClassAgreement>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassAgreement {
    /// Share of all samples classified as the class they asked for.
    pub overall: f64,
    /// The same share among the samples that asked for each class (NaN where none did).
    pub per_class: Vec<f64>,
}

/// How often the argmax of `probs` ([n, classes]) is the `asked` class of its row.
pub fn class_agreement(probs: &[f64], classes: usize, asked: &[usize]) -> ClassAgreement {
    let (mut hits, mut counts) = (vec![0usize; classes], vec![0usize; classes]);
    for (row, &want) in probs.chunks(classes).zip(asked) {
        if want < classes {
            counts[want] += 1;
            hits[want] += usize::from(argmax(row) == want);
        }
    }
    ClassAgreement {
        overall: hits.iter().sum::<usize>() as f64 / asked.len().max(1) as f64,
        per_class: hits.iter().zip(&counts).map(|(&h, &c)| if c == 0 { f64::NAN } else { h as f64 / c as f64 }).collect(),
    }
}

/// FD and IS of `images` against the `reference` features, their class shares and, when each
/// image `asked` for a class, how often it got it.
pub fn score(features: &Features, gpu: &Gpu, images: &[f32], reference: &[f64], asked: Option<&[usize]>) -> Result<SampleScores> {
    let (f, p) = features.of(gpu, images)?;
    let classes = features.classes();
    let shares = class_shares(&p, classes);
    Ok(SampleScores {
        fd: frechet_distance(&f, reference, features.width()),
        inception_score: inception_score(&p, classes),
        modes: shares.iter().filter(|&&s| s >= 0.05).count(),
        smallest_share: smallest_share(&shares),
        effective_classes: effective_classes(&shares),
        class_shares: shares,
        agreement: asked.map(|a| class_agreement(&p, classes, a)),
    })
}

/// A VAE's test likelihood figures, in nats per image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VaeScores {
    pub test_neg_elbo: f64,
    pub test_recon: f64,
    pub test_kl: f64,
    pub iw_samples: usize,
    /// -log p(x) by the importance-weighted bound with `iw_samples` samples.
    pub iwae_nll: f64,
    pub bits_per_dim: f64,
}

/// The test split's ELBO (eps keyed per chunk by `seed`, as training's evaluation draws it) and
/// the IWAE bound with k samples per image, all on the GPU.
pub fn vae_scores(gpu: &Gpu, vae: &Vae, test: &DeviceSplit, k: usize, seed: u64) -> Result<VaeScores> {
    let n = test.count;
    let metrics = Tensor::zeros(gpu, "eval.metrics", &[METRIC_SLOTS])?;
    let elbo = EvalParts::new(gpu, "eval", n, |rows, step| {
        let graph = VaeGraph::new(gpu, vae, rows, "eval")?;
        let program = graph.eval_program(gpu, vae, test, step, seed, &metrics);
        Ok((graph, program))
    })?;
    elbo.submit(gpu);
    let sums = metrics.read(gpu)?;
    let (recon, kl) = (f64::from(sums[TEST_RECON]) / n as f64, f64::from(sums[TEST_KL]) / n as f64);

    // Each image k times down the batch; chunks of about 5,000 rows.
    let repeated: Vec<u32> = (0..n as u32).flat_map(|i| std::iter::repeat_n(i, k)).collect();
    let split = test.reordered(gpu, "iwae", &repeated)?;
    let images = (5000.min(vae.max_rows(gpu)) / k).clamp(1, n);
    let (full, rest) = (n / images, n % images);
    let iw = Tensor::zeros(gpu, "iwae.metrics", &[METRIC_SLOTS])?;
    let iw_steps = StepBuffer::new(gpu, "iwae", full.max(1));
    let chunk = |c: usize| Step { t: 1, rng_step: c as u32, batch_start: (c * images * k) as u32, ..Step::default() };
    for (g, chunks) in [(images, (0..full).map(chunk).collect::<Vec<_>>()), (rest, vec![chunk(full)])] {
        if g == 0 || chunks.is_empty() {
            continue;
        }
        let graph = VaeGraph::new(gpu, vae, g * k, "iwae")?;
        let weights = Tensor::zeros(gpu, "iwae.weights", &[g * k])?;
        let per_image = Tensor::zeros(gpu, "iwae.per_image", &[g])?;
        let program = graph.iwae_program(gpu, vae, &split, &iw_steps.uniform, seed, k, &weights, &per_image, &iw, 2);
        submit_steps(gpu, &program, &iw_steps, &chunks);
        gpu.wait();
    }
    let nll = -f64::from(iw.read(gpu)?[2]) / n as f64;
    Ok(VaeScores {
        test_neg_elbo: recon + kl,
        test_recon: recon,
        test_kl: kl,
        iw_samples: k,
        iwae_nll: nll,
        bits_per_dim: nll / (vae.config.image.values() as f64 * std::f64::consts::LN_2),
    })
}
