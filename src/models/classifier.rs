//! The digit classifier behind the evaluation's Fréchet distance and Inception Score: an MLP
//! 784 → 512 → 256 → 10 trained with softmax cross-entropy. Its features are the last hidden
//! layer (256 values after ReLU).

use super::mlp::{allocate_all, initial_all, Backward, BatchnormMode, Forward, LayerSpec, Mlp};
use super::params::{Init, ParamLayout, Parameters};
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, GpuError, Program, Tensor};
use crate::nn::{self, Activation, AdamConfig};

pub const IMAGE: usize = 784;
pub const CLASSES: usize = 10;

/// Metric slots: per-step means over an epoch, and sums over the test split.
pub const TRAIN_LOSS: usize = 0;
pub const TRAIN_CORRECT: usize = 1;
pub const TEST_LOSS: usize = 2;
pub const TEST_CORRECT: usize = 3;
pub const METRIC_SLOTS: usize = 4;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierConfig {
    pub hidden: Vec<usize>,
    pub init: Init,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig { hidden: vec![512, 256], init: Init::Torch }
    }
}

pub fn layers(cfg: &ClassifierConfig) -> Vec<LayerSpec> {
    let mut layers = Vec::new();
    let mut width = IMAGE;
    for (i, &h) in cfg.hidden.iter().enumerate() {
        layers.push(LayerSpec::new(&format!("classifier.fc{}", i + 1), width, h, Activation::Relu));
        width = h;
    }
    layers.push(LayerSpec::new(&format!("classifier.fc{}", cfg.hidden.len() + 1), width, CLASSES, Activation::Identity));
    layers
}

pub struct Classifier {
    pub config: ClassifierConfig,
    pub net: Mlp,
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

/// One pass of the classifier over `rows` images.
pub struct ClassifierGraph {
    pub rows: usize,
    /// [rows, 784] in [0, 1]
    pub x: Tensor,
    /// [rows] class indices
    pub labels: Tensor,
    pub forward: Forward,
    pub backward: Backward,
    pub loss_row: Tensor,
    pub correct: Tensor,
    /// [rows, 10]
    pub probs: Tensor,
}

impl ClassifierGraph {
    pub fn new(gpu: &Gpu, c: &Classifier, rows: usize, label: &str) -> Result<ClassifierGraph, GpuError> {
        let x = Tensor::zeros(gpu, &format!("{label}.x"), &[rows, IMAGE])?;
        Ok(ClassifierGraph {
            rows,
            labels: Tensor::zeros(gpu, &format!("{label}.labels"), &[rows])?,
            forward: c.net.forward_buffers(gpu, x.region(), None)?,
            backward: c.net.backward_buffers(gpu, rows)?,
            loss_row: Tensor::zeros(gpu, &format!("{label}.loss_row"), &[rows])?,
            correct: Tensor::zeros(gpu, &format!("{label}.correct"), &[rows])?,
            probs: Tensor::zeros(gpu, &format!("{label}.probs"), &[rows, CLASSES])?,
            x,
        })
    }

    /// Gather, forward and the loss, the loss and correct counts added to the slots × `scale`.
    #[allow(clippy::too_many_arguments)]
    fn forward_and_loss(&self, gpu: &Gpu, c: &Classifier, program: &mut Program, split: &DeviceSplit, step: &wgpu::Buffer, metrics: &Tensor, slots: (usize, usize), scale: f32) {
        program.phase(
            "data",
            vec![
                nn::gather_rows(gpu, "x", step, &split.pixels.buffer, &split.order.buffer, self.x.view(), 1.0 / 255.0, 0.0),
                nn::gather_labels(gpu, "labels", step, &split.labels.buffer, &split.order.buffer, self.labels.view()),
            ],
        );
        program.phase("classifier.forward", c.net.forward_launches(gpu, &c.params, &self.forward, BatchnormMode::Train));
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

    pub fn train_program(&self, gpu: &Gpu, c: &Classifier, split: &DeviceSplit, step: &wgpu::Buffer, metrics: &Tensor, adam: &AdamConfig) -> Program {
        let mut program = Program::default();
        self.forward_and_loss(gpu, c, &mut program, split, step, metrics, (TRAIN_LOSS, TRAIN_CORRECT), 1.0 / self.rows as f32);
        program.phase("classifier.backward", c.net.backward_launches(gpu, &c.params, &self.forward, 0, &self.backward, true, &[]));
        let p = &c.params;
        program.phase("adam", vec![nn::adam(gpu, "classifier", adam, step, 0..p.layout.len, &p.values.buffer, &p.grads.buffer, &p.adam_m.buffer, &p.adam_v.buffer)]);
        program
    }

    /// Test loss and correct counts, summed.
    pub fn eval_program(&self, gpu: &Gpu, c: &Classifier, split: &DeviceSplit, step: &wgpu::Buffer, metrics: &Tensor) -> Program {
        let mut program = Program::default();
        self.forward_and_loss(gpu, c, &mut program, split, step, metrics, (TEST_LOSS, TEST_CORRECT), 1.0);
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
