//! A network: a stack of layers (`layers::LayerSpec`) over a model's flat parameter buffer,
//! with the buffers and the recorded-ahead launches of its forward and backward passes. Every
//! layer maps `[rows, inp]` to `[rows, out]`; images are NCHW rows, so a conv layer's output
//! feeds a Linear layer as PyTorch's flatten would.

use super::layers::{LayerKind, LayerSpec};
use super::params::{ParamLayout, Weights};
use crate::gpu::{Gpu, GpuError, Launch, Region, Tensor, View};
use crate::nn::{self, Activation, BatchnormTensors, ConvBuffers, ConvPlan, ConvShape};

/// Offsets of one layer's tensors in the parameter and state buffers.
#[derive(Debug, Clone)]
pub(super) struct LayerOffsets {
    /// [out, in]: the heads' weights stacked
    pub weight: usize,
    /// [out]
    pub bias: usize,
    /// (gamma, beta, state block)
    pub batchnorm: Option<(usize, usize, usize)>,
    /// Under spectral norm, each head's u and v in the state buffer
    pub spectral: Vec<(usize, usize)>,
}

/// The layers of one network and where their parameters live.
pub struct Network {
    pub layers: Vec<LayerSpec>,
    pub(super) offsets: Vec<LayerOffsets>,
}

/// Activations of one forward pass over `rows` rows.
pub struct Forward {
    pub rows: usize,
    pub input: Region,
    /// [rows, out] before batch norm, for batch-normalised layers
    pub pre: Vec<Option<Tensor>>,
    /// [rows, out] each layer's activated output
    pub out: Vec<Region>,
    /// Conv layers' scratch under their plans (an im2col weight gradient reads what the
    /// forward left in it)
    pub conv: Vec<Option<ConvBuffers>>,
    /// Batch norm in training mode normalises the rows as this many equal batches, each with
    /// its own statistics, as that many calls of the network would (1 unless set).
    pub groups: usize,
}

/// A conv layer's scratch for a forward or backward pass over `rows` images, under the plan
/// `gpu` runs its shape with (`ConvPlan::chosen`); None for a Linear layer.
fn conv_buffers(gpu: &Gpu, spec: &LayerSpec, name: &str, rows: usize, backward: bool) -> Result<Option<ConvBuffers>, GpuError> {
    let (s, transposed) = match spec.kind {
        LayerKind::Linear => return Ok(None),
        LayerKind::Conv2d(s) => (s, false),
        LayerKind::ConvTranspose2d(s) => (s, true),
    };
    ConvBuffers::new(gpu, name, &s, ConvPlan::chosen(gpu, &s, rows)?, transposed, backward, rows).map(Some)
}

impl Forward {
    pub fn output(&self) -> &Region {
        self.out.last().expect("an MLP has layers")
    }

    fn layer_input(&self, l: usize) -> &Region {
        if l == 0 {
            &self.input
        } else {
            &self.out[l - 1]
        }
    }
}

/// Gradients of one backward pass.
pub struct Backward {
    /// [rows, out]: gradient at each layer's matmul output; the loss fills the last one
    pub d_pre: Vec<Tensor>,
    /// [rows, out]: gradient at a batch-normalised layer's activated output
    pub d_out: Vec<Option<Tensor>>,
    /// Conv layers' scratch for the backward products
    pub conv: Vec<Option<ConvBuffers>>,
}

impl Backward {
    pub fn d_output(&self) -> &Tensor {
        self.d_pre.last().expect("an MLP has layers")
    }
}

/// The gradient at some of a network's input columns: `dx` [rows, its cols] for the input's
/// columns `from..from + dx.cols`, times the derivative of the activation that produced them
/// when `prev` is given (that activation's output, [rows, dx.cols]).
pub struct InputGrad<'a> {
    pub from: usize,
    pub dx: View<'a>,
    pub prev: Option<(View<'a>, Activation)>,
}

impl<'a> InputGrad<'a> {
    /// The whole input's gradient, no activation.
    pub fn all(dx: View<'a>) -> InputGrad<'a> {
        InputGrad { from: 0, dx, prev: None }
    }

    /// The same gradient taken at columns from `from` on.
    pub fn from_column(self, from: usize) -> InputGrad<'a> {
        InputGrad { from, ..self }
    }
}

/// Batch statistics (training) or running statistics (sampling, evaluation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchnormMode {
    Train,
    Eval,
}

/// Allocates networks into one flat parameter layout (and one state layout), in order.
pub fn allocate_all(nets: Vec<Vec<LayerSpec>>) -> (Vec<Network>, ParamLayout, ParamLayout) {
    let (mut params, mut state) = (ParamLayout::default(), ParamLayout::default());
    let mlps = nets.into_iter().map(|layers| Network::allocate(layers, &mut params, &mut state)).collect();
    (mlps, params, state)
}

/// The layouts of `nets` and their initial values, as torch would create them from `seed`.
pub fn initial_all(nets: Vec<Vec<LayerSpec>>, init: super::layers::Init, seed: u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>) {
    let all: Vec<LayerSpec> = nets.iter().flatten().cloned().collect();
    let (_, params, state) = allocate_all(nets);
    let (values, state_values) = super::layers::initial_values(&all, &params, &state, init, seed);
    (params, state, values, state_values)
}

impl Network {
    /// Allocates the layers' parameters (and batch-norm state) in the layouts.
    pub fn allocate(layers: Vec<LayerSpec>, params: &mut ParamLayout, state: &mut ParamLayout) -> Network {
        for pair in layers.windows(2) {
            assert_eq!(pair[0].out, pair[1].inp, "{} feeds {}", pair[0].name, pair[1].name);
        }
        let offsets = layers
            .iter()
            .map(|layer| {
                let heads = layer.head_names();
                let (weight_shape, bias_shape) = layer.param_shapes();
                assert!(layer.conv_shape().is_none() || heads.len() == 1, "{}: a conv layer has one head", layer.name);
                let mut block: Vec<(String, Vec<usize>)> = heads.iter().map(|h| (layer.weight_name(h), weight_shape.clone())).collect();
                block.extend(heads.iter().map(|h| (format!("{h}.bias"), bias_shape.clone())));
                let weight = params.push_block(&block);
                if layer.pad > 0 {
                    for h in &heads {
                        params.set_pad_cols(&layer.weight_name(h), layer.pad);
                    }
                }
                let batchnorm = layer.batchnorm.as_ref().map(|bn| {
                    let n = vec![layer.channels()];
                    let gamma = params.push_block(&[(format!("{}.weight", bn.name), n.clone()), (format!("{}.bias", bn.name), n.clone())]);
                    let saved = vec![bn.groups, layer.channels()];
                    let stats = [("saved_mean", &saved), ("saved_invstd", &saved), ("running_mean", &n), ("running_var", &n)]
                        .map(|(s, shape)| (format!("{}.{s}", bn.name), shape.clone()));
                    let state_off = state.push_block(&stats);
                    (gamma, gamma + layer.channels(), state_off)
                });
                let (rows, cols) = layer.weight_matrix();
                let head_rows = rows / heads.len();
                // u and v in blocks of their own: the matmuls of the power iteration read them.
                let spectral = heads
                    .iter()
                    .filter(|_| layer.spectral)
                    .map(|h| {
                        let (u, v) = layer.spectral_names(h);
                        let at = (state.push_block(&[(u, vec![head_rows])]), state.push_block(&[(v.clone(), vec![cols])]));
                        if layer.pad > 0 {
                            state.set_pad_cols(&v, layer.pad);
                        }
                        at
                    })
                    .collect();
                LayerOffsets { weight, bias: weight + rows * cols, batchnorm, spectral }
            })
            .collect();
        Network { layers, offsets }
    }

    /// The widest buffer a graph of this network holds per row: an activation, or a conv
    /// layer's receptive fields (`pixels·patch`) or channels-last output.
    pub fn widest_row(&self) -> usize {
        let conv = |s: ConvShape| s.pixels() * s.patch().max(s.out_ch);
        self.layers.iter().map(|l| l.inp.max(l.out).max(l.conv_shape().map_or(0, conv))).max().unwrap_or(1)
    }

    fn weight<'a>(&self, params: Weights<'a>, l: usize) -> View<'a> {
        let (rows, cols) = self.layers[l].weight_matrix();
        View::new(params.values, self.offsets[l].weight, rows, cols)
    }

    fn batchnorm<'a>(&self, params: Weights<'a>, l: usize) -> Option<BatchnormTensors<'a>> {
        let spec = &self.layers[l];
        let (bn, (gamma, beta, state)) = (spec.batchnorm.as_ref()?, self.offsets[l].batchnorm?);
        Some(BatchnormTensors {
            weights: params.values,
            gamma_off: gamma,
            beta_off: beta,
            state: params.state,
            state_off: state,
            capacity: bn.groups,
            eps: bn.eps,
            momentum: bn.momentum,
            act: spec.act,
            hw: spec.pixels(),
        })
    }

    /// Refuses training over `rows` (every group) where a batch norm's statistics would walk
    /// more values a channel than the adapter can (`nn::check_column`); evaluation normalises
    /// value by value, with no such walk.
    pub fn check_training(&self, gpu: &Gpu, rows: usize) -> Result<(), GpuError> {
        for spec in &self.layers {
            if let Some(bn) = &spec.batchnorm {
                crate::nn::check_column(gpu, &bn.name, rows * spec.pixels())?;
            }
        }
        Ok(())
    }

    /// Buffers of a forward pass over `input`'s rows; the last layer writes into `output` when
    /// given (a region of another graph's buffer).
    pub fn forward_buffers(&self, gpu: &Gpu, input: Region, output: Option<Region>) -> Result<Forward, GpuError> {
        let rows = input.rows;
        let last = self.layers.len() - 1;
        let mut pre = Vec::new();
        let mut out = Vec::new();
        let mut conv = Vec::new();
        for (l, spec) in self.layers.iter().enumerate() {
            conv.push(conv_buffers(gpu, spec, &spec.name, rows, false)?);
            pre.push(match spec.batchnorm {
                Some(_) => Some(Tensor::zeros(gpu, &format!("{}.pre", spec.name), &[rows, spec.out])?),
                None => None,
            });
            out.push(match (&output, l == last) {
                (Some(region), true) => {
                    assert_eq!((region.rows, region.cols), (rows, spec.out), "{}: output region shape", spec.name);
                    region.clone()
                }
                _ => Tensor::zeros(gpu, &format!("{}.out", spec.name), &[rows, spec.out])?.region(),
            });
        }
        Ok(Forward { rows, input, pre, out, conv, groups: 1 })
    }

    pub fn backward_buffers(&self, gpu: &Gpu, rows: usize) -> Result<Backward, GpuError> {
        let mut d_pre = Vec::new();
        let mut d_out = Vec::new();
        let mut conv = Vec::new();
        for spec in &self.layers {
            conv.push(conv_buffers(gpu, spec, &format!("{}.grad", spec.name), rows, true)?);
            d_pre.push(Tensor::zeros(gpu, &format!("{}.d_pre", spec.name), &[rows, spec.out])?);
            d_out.push(match spec.batchnorm {
                Some(_) => Some(Tensor::zeros(gpu, &format!("{}.d_out", spec.name), &[rows, spec.out])?),
                None => None,
            });
        }
        Ok(Backward { d_pre, d_out, conv })
    }

    /// The forward pass on `params`: a model's own weights, or their average when sampling.
    pub fn forward_launches<'a>(&self, gpu: &Gpu, params: impl Into<Weights<'a>>, fwd: &Forward, mode: BatchnormMode) -> Vec<Launch> {
        let params = params.into();
        let mut launches = Vec::new();
        for (l, spec) in self.layers.iter().enumerate() {
            let x = fwd.layer_input(l).view();
            let w = self.weight(params, l);
            let bias = Some(self.offsets[l].bias);
            // Batch-normalised, the product writes the pre-activation and the batch norm applies
            // the activation.
            let (y, act) = match &fwd.pre[l] {
                Some(pre) => (pre.view(), Activation::Identity),
                None => (fwd.out[l].view(), spec.act),
            };
            launches.extend(match (spec.kind, &fwd.conv[l]) {
                (LayerKind::Conv2d(s), Some(c)) => nn::conv2d_forward(gpu, &spec.name, &s, x, w, bias, &c.scratch(), y, act),
                (LayerKind::ConvTranspose2d(s), Some(c)) => nn::conv_transpose2d_forward(gpu, &spec.name, &s, x, w, bias, &c.scratch(), y, act),
                _ => vec![nn::matmul_forward(gpu, &spec.name, x, w, bias, y, act)],
            });
            if let (Some(bn), Some(pre), Some(bn_spec)) = (self.batchnorm(params, l), &fwd.pre[l], &spec.batchnorm) {
                launches.push(match mode {
                    BatchnormMode::Train => nn::batchnorm_forward_train(gpu, &bn_spec.name, &bn, fwd.groups, pre.view(), fwd.out[l].view()),
                    BatchnormMode::Eval => nn::batchnorm_forward_eval(gpu, &bn_spec.name, &bn, pre.view(), fwd.out[l].view()),
                });
            }
        }
        launches
    }

    /// Backpropagates from `bwd.d_output()` (filled by a loss) over the forward rows
    /// `start..start + bwd's rows`, through the weights the forward read (`params`). With
    /// `grads` (laid out as the parameters), parameter gradients are written there; each of
    /// `input_grads` takes the gradient at some input columns (a conditioned input's image part
    /// to the generator, its label part to the embedding).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_launches<'a>(
        &self, gpu: &Gpu, params: impl Into<Weights<'a>>, fwd: &Forward, start: usize, bwd: &Backward, grads: Option<&wgpu::Buffer>,
        input_grads: &[InputGrad<'_>],
    ) -> Vec<Launch> {
        let params = params.into();
        let rows = bwd.d_pre[0].shape[0];
        let window = |r: &Region| r.rows(start, rows);
        let mut launches = Vec::new();
        for l in (0..self.layers.len()).rev() {
            let spec = &self.layers[l];
            let (dy, w) = (bwd.d_pre[l].view(), self.weight(params, l));
            let x = window(fwd.layer_input(l));
            let (w_rows, w_cols) = spec.weight_matrix();
            let dw = grads.map(|grads| (View::new(grads, self.offsets[l].weight, w_rows, w_cols), Some(self.offsets[l].bias)));
            if l == 0 && spec.conv_shape().is_none() {
                launches.extend(dw.map(|(dw, bias)| nn::matmul_backward_weight(gpu, &spec.name, dy, x.view(), dw, bias, false)));
                for g in input_grads {
                    launches.push(nn::matmul_backward_input(gpu, &spec.name, dy, w.columns(g.from, g.dx.cols), g.dx, g.prev));
                }
                continue;
            }
            assert!(l > 0 || input_grads.len() <= 1, "{}: one input gradient through a first conv layer", spec.name);
            // The gradient goes on into the previous layer: at its pre-activation through its
            // act', or, batch-normalised, at its output, and its batch norm's backward follows.
            let prev_out = (l > 0).then(|| window(&fwd.out[l - 1]));
            let mut bn_backward = None;
            let dx = prev_out.as_ref().map(|prev_out| {
                let p = l - 1;
                match (self.batchnorm(params, p), &bwd.d_out[p], &fwd.pre[p], &self.layers[p].batchnorm) {
                    (Some(bn), Some(d_out), Some(pre), Some(bn_spec)) => {
                        let per_group = fwd.rows / fwd.groups;
                        assert!(start.is_multiple_of(per_group) && rows.is_multiple_of(per_group), "batch norm backpropagates whole batches");
                        let groups = nn::BatchGroups { count: rows / per_group, first: start / per_group };
                        let pre = pre.view().rows(start, rows);
                        bn_backward =
                            Some(nn::batchnorm_backward(gpu, &bn_spec.name, &bn, groups, pre, prev_out.view(), d_out.view(), bwd.d_pre[p].view(), grads));
                        (d_out.view(), None)
                    }
                    _ => (bwd.d_pre[p].view(), Some((prev_out.view(), self.layers[p].act))),
                }
            });
            // A first conv layer's input gradient: a discriminator's, into the generator.
            let dx = dx.or_else(|| {
                input_grads.first().map(|g| {
                    assert!(g.from == 0 && g.dx.cols == spec.inp, "{}: the gradient at the whole input of a conv layer", spec.name);
                    (g.dx, g.prev)
                })
            });
            match (spec.kind, &fwd.conv[l], &bwd.conv[l]) {
                (LayerKind::Conv2d(s), Some(saved), Some(scratch)) => {
                    let cols = saved.saved(&s, false, start, rows);
                    launches.extend(nn::conv2d_backward(gpu, &spec.name, &s, dy, w, x.view(), cols, &scratch.scratch(), dw, dx));
                }
                (LayerKind::ConvTranspose2d(s), Some(saved), Some(scratch)) => {
                    let x_cl = saved.saved(&s, true, start, rows);
                    launches.extend(nn::conv_transpose2d_backward(gpu, &spec.name, &s, dy, w, x.view(), x_cl, &scratch.scratch(), dw, dx));
                }
                _ => {
                    launches.extend(dw.map(|(dw, bias)| nn::matmul_backward_weight(gpu, &spec.name, dy, x.view(), dw, bias, false)));
                    launches.extend(dx.map(|(dx, prev)| nn::matmul_backward_input(gpu, &spec.name, dy, w, dx, prev)));
                }
            }
            launches.extend(bn_backward);
        }
        launches
    }
}
