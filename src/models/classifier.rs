//! The digit classifier behind the evaluation's Fréchet distance and Inception Score: by
//! default a small CNN, Conv2d(1→32, k4 s2 p1) → BatchNorm2d → ReLU → Conv2d(32→64, k4 s2 p1)
//! → BatchNorm2d → ReLU → flatten 3136 → Linear 256 → ReLU → Linear 10, trained with softmax
//! cross-entropy on images shifted at random by up to 2 pixels. Its features are the last
//! hidden layer (256 values after ReLU). On other data it reads the data's C × H × W and has a
//! logit per class. Files from before the CNN hold an MLP (no `conv` in
//! their config), which loads as it was trained.

use super::layers::{BatchnormSpec, LayerSpec};
use super::network::{allocate_all, initial_all, Backward, BatchnormMode, Forward, Network};
use super::layers::Init;
use super::params::{ParamLayout, Parameters};
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, GpuError, Program, Tensor};
use crate::nn::{self, Activation, AdamConfig, ConvShape};

use crate::data::ImageShape;
/// The digits' classes, and the class count of classifiers from before it was recorded.
pub const DIGITS: usize = 10;

/// Metric slots: per-step means over an epoch, and sums over the test split.
pub const TRAIN_LOSS: usize = 0;
pub const TRAIN_CORRECT: usize = 1;
pub const TEST_LOSS: usize = 2;
pub const TEST_CORRECT: usize = 3;
pub const METRIC_SLOTS: usize = 4;

/// The noise stream of the training images' random shifts.
pub const STREAM_SHIFT: u32 = 7;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierConfig {
    /// Output channels of each Conv2d(k4, s2, p1) + ReLU, from the image on (28 → 14 → 7 …);
    /// empty: an MLP on the pixels.
    #[serde(default)]
    pub conv: Vec<usize>,
    /// Widths of the Linear + ReLU layers after them; the last one's outputs are the features.
    pub hidden: Vec<usize>,
    pub init: Init,
    /// A BatchNorm2d (`classifier.bnN`) between each conv layer and its ReLU.
    #[serde(default)]
    pub batchnorm: bool,
    /// Training moves each image by up to this many whole pixels each way (0: never).
    #[serde(default)]
    pub shift: usize,
    /// The images it reads, set from the data (files from before: the digits').
    #[serde(default)]
    pub image: ImageShape,
    /// Its logits: the data's classes.
    #[serde(default = "digits")]
    pub classes: usize,
}

fn digits() -> usize {
    DIGITS
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig { conv: vec![32, 64], hidden: vec![256], init: Init::Torch, batchnorm: true, shift: 2, image: ImageShape::MNIST, classes: DIGITS }
    }
}

pub fn layers(cfg: &ClassifierConfig) -> Vec<LayerSpec> {
    let mut layers = Vec::new();
    let (mut channels, mut side) = (cfg.image.channels, cfg.image.side);
    for (i, &c) in cfg.conv.iter().enumerate() {
        let shape = ConvShape::conv2d(channels, c, side, side, 4, 2, 1);
        let batchnorm = cfg.batchnorm.then(|| BatchnormSpec::new(&format!("classifier.bn{}", i + 1), 1e-5, 0.1));
        layers.push(LayerSpec { batchnorm, ..LayerSpec::conv2d(&format!("classifier.conv{}", i + 1), shape, Activation::Relu) });
        (channels, side) = (c, shape.out_h());
    }
    let mut width = channels * side * side;
    for (i, &h) in cfg.hidden.iter().enumerate() {
        layers.push(LayerSpec::new(&format!("classifier.fc{}", i + 1), width, h, Activation::Relu));
        width = h;
    }
    layers.push(LayerSpec::new(&format!("classifier.fc{}", cfg.hidden.len() + 1), width, cfg.classes, Activation::Identity));
    layers
}

pub struct Classifier {
    pub config: ClassifierConfig,
    pub net: Network,
    pub params: Parameters,
}

impl Classifier {
    pub fn initial(cfg: &ClassifierConfig, seed: u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>) {
        initial_all(vec![layers(cfg)], cfg.init, seed)
    }

    pub fn new(gpu: &Gpu, cfg: &ClassifierConfig, values: &[f32], state: &[f32]) -> Result<Classifier, GpuError> {
        let (mut nets, p, s) = allocate_all(vec![layers(cfg)]);
        let net = nets.pop().expect("one network");
        let params = Parameters::new(gpu, "classifier", p, s, values, state)?;
        Ok(Classifier { config: cfg.clone(), net, params })
    }

    /// Width of the features (the last hidden layer).
    pub fn feature_width(&self) -> usize {
        *self.config.hidden.last().expect("a classifier has a hidden layer")
    }
}

/// What a program does with a split.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// Training: images shifted by draws keyed by `seed` (when the graph augments), batch
    /// statistics, per-step means into the training slots.
    Train { seed: u64 },
    /// The test split: the images as they are, running statistics, sums into the test slots.
    Test,
}

/// One pass of the classifier over `rows` images.
pub struct ClassifierGraph {
    pub rows: usize,
    /// [rows, C·H·W] in [0, 1]
    pub x: Tensor,
    /// Training with shifts: the gathered images before they move ([rows, C·H·W]) and each
    /// row's draws ([rows, 2]: dy and dx, offset by the largest shift)
    augment: Option<(Tensor, Tensor)>,
    /// [rows] class indices
    pub labels: Tensor,
    pub forward: Forward,
    pub backward: Backward,
    pub loss_row: Tensor,
    pub correct: Tensor,
    /// [rows, classes]
    pub probs: Tensor,
}

impl ClassifierGraph {
    /// A graph over `rows` images; `augment` for training's shifted images.
    pub fn new(gpu: &Gpu, c: &Classifier, rows: usize, label: &str, augment: bool) -> Result<ClassifierGraph, GpuError> {
        let image = c.config.image.values();
        let x = Tensor::zeros(gpu, &format!("{label}.x"), &[rows, image])?;
        let augment = match augment && c.config.shift > 0 {
            true => Some((Tensor::zeros(gpu, &format!("{label}.unshifted"), &[rows, image])?, Tensor::zeros(gpu, &format!("{label}.shifts"), &[rows, 2])?)),
            false => None,
        };
        Ok(ClassifierGraph {
            rows,
            augment,
            labels: Tensor::zeros(gpu, &format!("{label}.labels"), &[rows])?,
            forward: c.net.forward_buffers(gpu, x.region(), None)?,
            backward: c.net.backward_buffers(gpu, rows)?,
            loss_row: Tensor::zeros(gpu, &format!("{label}.loss_row"), &[rows])?,
            correct: Tensor::zeros(gpu, &format!("{label}.correct"), &[rows])?,
            probs: Tensor::zeros(gpu, &format!("{label}.probs"), &[rows, c.config.classes])?,
            x,
        })
    }

    /// Gather (then shift, when training a graph that augments), forward and the loss; the
    /// loss and correct counts go to the pass's metric slots.
    #[allow(clippy::too_many_arguments)]
    fn forward_and_loss(&self, gpu: &Gpu, c: &Classifier, program: &mut Program, split: &DeviceSplit, step: &wgpu::Buffer, pass: Pass, metrics: &Tensor) {
        let labels = nn::gather_labels(gpu, "labels", step, &split.labels.buffer, &split.order.buffer, self.labels.view());
        let gather = |into: &Tensor| nn::gather_rows(gpu, "x", step, &split.pixels.buffer, &split.order.buffer, into.view(), 1.0 / 255.0, 0.0);
        program.phase(
            "data",
            match (&self.augment, pass) {
                (Some((unshifted, shifts)), Pass::Train { seed }) => {
                    let (most, ImageShape { channels, side }) = (c.config.shift, c.config.image);
                    vec![
                        gather(unshifted),
                        labels,
                        nn::fill_labels(gpu, "shifts", step, shifts.view(), 2 * most + 1, STREAM_SHIFT, seed),
                        nn::shift_images(gpu, "shift", shifts.view(), unshifted.view(), self.x.view(), (channels, side, side), most),
                    ]
                }
                _ => vec![gather(&self.x), labels],
            },
        );
        // Training normalises by the batch's statistics; the test split by the running ones.
        let (mode, slots, scale) = match pass {
            Pass::Train { .. } => (BatchnormMode::Train, (TRAIN_LOSS, TRAIN_CORRECT), 1.0 / self.rows as f32),
            Pass::Test => (BatchnormMode::Eval, (TEST_LOSS, TEST_CORRECT), 1.0),
        };
        program.phase("classifier.forward", c.net.forward_launches(gpu, &c.params, &self.forward, mode));
        program.phase(
            "loss",
            vec![
                nn::softmax_cross_entropy(
                    gpu,
                    "xent",
                    self.forward.output().view(),
                    self.labels.view(),
                    1.0 / self.rows as f32,
                    self.backward.d_output().view(),
                    self.loss_row.view(),
                    self.correct.view(),
                ),
                nn::sum_accumulate(gpu, "loss", self.loss_row.view(), &metrics.buffer, slots.0, scale),
                nn::sum_accumulate(gpu, "correct", self.correct.view(), &metrics.buffer, slots.1, scale),
            ],
        );
    }

    /// A training step: the batch's mean loss and accuracy are added to the training slots.
    #[allow(clippy::too_many_arguments)]
    pub fn train_program(&self, gpu: &Gpu, c: &Classifier, split: &DeviceSplit, step: &wgpu::Buffer, seed: u64, metrics: &Tensor, adam: &AdamConfig) -> Program {
        let mut program = Program::default();
        self.forward_and_loss(gpu, c, &mut program, split, step, Pass::Train { seed }, metrics);
        program.phase("classifier.backward", c.net.backward_launches(gpu, &c.params, &self.forward, 0, &self.backward, Some(&c.params.grads.buffer), &[]));
        let p = &c.params;
        program.phase("adam", vec![nn::adam(gpu, "classifier", adam, step, 0..p.layout.len, &p.values.buffer, &p.grads.buffer, &p.adam_m.buffer, &p.adam_v.buffer)]);
        program
    }

    /// Test loss and correct counts, summed.
    pub fn eval_program(&self, gpu: &Gpu, c: &Classifier, split: &DeviceSplit, step: &wgpu::Buffer, metrics: &Tensor) -> Program {
        let mut program = Program::default();
        self.forward_and_loss(gpu, c, &mut program, split, step, Pass::Test, metrics);
        program
    }

    /// Features and class probabilities of whatever the host writes into `x`.
    pub fn features_program(&self, gpu: &Gpu, c: &Classifier) -> Program {
        let mut program = Program::default();
        program.phase("classifier.forward", c.net.forward_launches(gpu, &c.params, &self.forward, BatchnormMode::Eval));
        program.phase("softmax", vec![nn::softmax_rows(gpu, "probs", self.forward.output().view(), self.probs.view())]);
        program
    }

    /// [rows, width] activations of the last hidden layer.
    pub fn features(&self) -> &crate::gpu::Region {
        &self.forward.out[self.forward.out.len() - 2]
    }
}
