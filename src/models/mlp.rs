//! A stack of Linear layers (optionally batch-normalised) over a model's flat parameter buffer,
//! with the buffers and the recorded-ahead launches of its forward and backward passes.

use super::params::{ParamLayout, Parameters};
use crate::gpu::{Gpu, GpuError, Launch, Region, Tensor, View};
use crate::nn::{self, Activation, BatchnormTensors};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchnormSpec {
    /// e.g. `generator.bn2`
    pub name: String,
    pub eps: f32,
    pub momentum: f32,
}

/// One Linear layer, its activation, and an optional batch norm between the two.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerSpec {
    /// e.g. `generator.fc2`
    pub name: String,
    pub inp: usize,
    pub out: usize,
    pub act: Activation,
    pub batchnorm: Option<BatchnormSpec>,
    /// Linear layers that share this matmul, `out / heads.len()` rows each, stored back to back
    /// (the VAE's `encoder.mu` and `encoder.logvar`); empty for one Linear called `name`.
    pub heads: Vec<String>,
    /// The last `pad` of the `inp` columns are zero padding (`ParamEntry::pad_cols`).
    pub pad: usize,
}

impl LayerSpec {
    pub fn new(name: &str, inp: usize, out: usize, act: Activation) -> LayerSpec {
        LayerSpec { name: name.to_string(), inp, out, act, batchnorm: None, heads: Vec::new(), pad: 0 }
    }

    /// This layer reading zero columns after its real input, to whole vec4s, so the fast
    /// matmul kernels can run it (a conditioned input: 784 + 10 columns).
    pub fn padded(self) -> LayerSpec {
        let inp = padded_width(self.inp);
        LayerSpec { pad: inp - self.inp, inp, ..self }
    }

    pub fn head_names(&self) -> Vec<String> {
        if self.heads.is_empty() {
            vec![self.name.clone()]
        } else {
            self.heads.clone()
        }
    }
}

/// `width` rounded up to a multiple of 4.
pub fn padded_width(width: usize) -> usize {
    width.div_ceil(4) * 4
}

/// Offsets of one layer's tensors in the parameter and state buffers.
#[derive(Debug, Clone, Copy)]
struct LayerOffsets {
    /// [out, in]: the heads' weights stacked
    weight: usize,
    /// [out]
    bias: usize,
    /// (gamma, beta, state block)
    batchnorm: Option<(usize, usize, usize)>,
}

/// The layers of one network and where their parameters live.
pub struct Mlp {
    pub layers: Vec<LayerSpec>,
    offsets: Vec<LayerOffsets>,
}

/// Activations of one forward pass over `rows` rows.
pub struct Forward {
    pub rows: usize,
    pub input: Region,
    /// [rows, out] before batch norm, for batch-normalised layers
    pub pre: Vec<Option<Tensor>>,
    /// [rows, out] each layer's activated output
    pub out: Vec<Region>,
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
pub fn allocate_all(nets: Vec<Vec<LayerSpec>>) -> (Vec<Mlp>, ParamLayout, ParamLayout) {
    let (mut params, mut state) = (ParamLayout::default(), ParamLayout::default());
    let mlps = nets.into_iter().map(|layers| Mlp::allocate(layers, &mut params, &mut state)).collect();
    (mlps, params, state)
}

/// The layouts of `nets` and their initial values, as torch would create them from `seed`.
pub fn initial_all(nets: Vec<Vec<LayerSpec>>, init: super::Init, seed: u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>) {
    let all: Vec<LayerSpec> = nets.iter().flatten().cloned().collect();
    let (_, params, state) = allocate_all(nets);
    let (values, state_values) = super::params::initial_values(&all, &params, &state, init, seed);
    (params, state, values, state_values)
}

impl Mlp {
    /// Allocates the layers' parameters (and batch-norm state) in the layouts.
    pub fn allocate(layers: Vec<LayerSpec>, params: &mut ParamLayout, state: &mut ParamLayout) -> Mlp {
        for pair in layers.windows(2) {
            assert_eq!(pair[0].out, pair[1].inp, "{} feeds {}", pair[0].name, pair[1].name);
        }
        let offsets = layers
            .iter()
            .map(|layer| {
                let heads = layer.head_names();
                let rows = layer.out / heads.len();
                let mut block: Vec<(String, Vec<usize>)> = heads.iter().map(|h| (format!("{h}.weight"), vec![rows, layer.inp])).collect();
                block.extend(heads.iter().map(|h| (format!("{h}.bias"), vec![rows])));
                let weight = params.push_block(&block);
                if layer.pad > 0 {
                    for h in &heads {
                        params.set_pad_cols(&format!("{h}.weight"), layer.pad);
                    }
                }
                let batchnorm = layer.batchnorm.as_ref().map(|bn| {
                    let n = vec![layer.out];
                    let gamma = params.push_block(&[(format!("{}.weight", bn.name), n.clone()), (format!("{}.bias", bn.name), n.clone())]);
                    let stats = ["saved_mean", "saved_invstd", "running_mean", "running_var"].map(|s| (format!("{}.{s}", bn.name), n.clone()));
                    let state_off = state.push_block(&stats);
                    (gamma, gamma + layer.out, state_off)
                });
                LayerOffsets { weight, bias: weight + layer.out * layer.inp, batchnorm }
            })
            .collect();
        Mlp { layers, offsets }
    }

    fn weight<'a>(&self, params: &'a Parameters, l: usize) -> View<'a> {
        let spec = &self.layers[l];
        View::new(&params.values.buffer, self.offsets[l].weight, spec.out, spec.inp)
    }

    fn batchnorm<'a>(&self, params: &'a Parameters, l: usize) -> Option<BatchnormTensors<'a>> {
        let spec = &self.layers[l];
        let (bn, (gamma, beta, state)) = (spec.batchnorm.as_ref()?, self.offsets[l].batchnorm?);
        Some(BatchnormTensors {
            weights: &params.values.buffer,
            gamma_off: gamma,
            beta_off: beta,
            state: &params.state.buffer,
            state_off: state,
            eps: bn.eps,
            momentum: bn.momentum,
            act: spec.act,
        })
    }

    /// Buffers of a forward pass over `input`'s rows; the last layer writes into `output` when
    /// given (a region of another graph's buffer).
    pub fn forward_buffers(&self, gpu: &Gpu, input: Region, output: Option<Region>) -> Result<Forward, GpuError> {
        let rows = input.rows;
        let last = self.layers.len() - 1;
        let mut pre = Vec::new();
        let mut out = Vec::new();
        for (l, spec) in self.layers.iter().enumerate() {
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
        Ok(Forward { rows, input, pre, out })
    }

    pub fn backward_buffers(&self, gpu: &Gpu, rows: usize) -> Result<Backward, GpuError> {
        let mut d_pre = Vec::new();
        let mut d_out = Vec::new();
        for spec in &self.layers {
            d_pre.push(Tensor::zeros(gpu, &format!("{}.d_pre", spec.name), &[rows, spec.out])?);
            d_out.push(match spec.batchnorm {
                Some(_) => Some(Tensor::zeros(gpu, &format!("{}.d_out", spec.name), &[rows, spec.out])?),
                None => None,
            });
        }
        Ok(Backward { d_pre, d_out })
    }

    pub fn forward_launches(&self, gpu: &Gpu, params: &Parameters, fwd: &Forward, mode: BatchnormMode) -> Vec<Launch> {
        let mut launches = Vec::new();
        for (l, spec) in self.layers.iter().enumerate() {
            let x = fwd.layer_input(l).view();
            let w = self.weight(params, l);
            let bias = Some(self.offsets[l].bias);
            match (self.batchnorm(params, l), &fwd.pre[l]) {
                (Some(bn), Some(pre)) => {
                    launches.push(nn::matmul_forward(gpu, &spec.name, x, w, bias, pre.view(), Activation::Identity));
                    let name = &spec.batchnorm.as_ref().expect("batch-normalised").name;
                    launches.push(match mode {
                        BatchnormMode::Train => nn::batchnorm_forward_train(gpu, name, &bn, pre.view(), fwd.out[l].view()),
                        BatchnormMode::Eval => nn::batchnorm_forward_eval(gpu, name, &bn, pre.view(), fwd.out[l].view()),
                    });
                }
                _ => launches.push(nn::matmul_forward(gpu, &spec.name, x, w, bias, fwd.out[l].view(), spec.act)),
            }
        }
        launches
    }

    /// Backpropagates from `bwd.d_output()` (filled by a loss) over the forward rows
    /// `start..start + bwd's rows`. With `weights`, parameter gradients are written to
    /// `params.grads`; each of `input_grads` takes the gradient at some input columns (a
    /// conditioned input's image part to the generator, its label part to the embedding).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_launches(
        &self, gpu: &Gpu, params: &Parameters, fwd: &Forward, start: usize, bwd: &Backward, weights: bool,
        input_grads: &[InputGrad<'_>],
    ) -> Vec<Launch> {
        let rows = bwd.d_pre[0].shape[0];
        let window = |r: &Region| r.rows(start, rows);
        let mut launches = Vec::new();
        for l in (0..self.layers.len()).rev() {
            let spec = &self.layers[l];
            let dy = bwd.d_pre[l].view();
            let x = window(fwd.layer_input(l));
            if weights {
                let dw = View::new(&params.grads.buffer, self.offsets[l].weight, spec.out, spec.inp);
                launches.push(nn::matmul_backward_weight(gpu, &spec.name, dy, x.view(), dw, Some(self.offsets[l].bias), false));
            }
            let w = self.weight(params, l);
            if l == 0 {
                for g in input_grads {
                    launches.push(nn::matmul_backward_input(gpu, &spec.name, dy, w.columns(g.from, g.dx.cols), g.dx, g.prev));
                }
                continue;
            }
            let p = l - 1;
            let prev_out = window(&fwd.out[p]);
            match (self.batchnorm(params, p), &bwd.d_out[p], &fwd.pre[p]) {
                (Some(bn), Some(d_out), Some(pre)) => {
                    assert_eq!((start, rows), (0, fwd.rows), "batch norm backpropagates whole batches");
                    launches.push(nn::matmul_backward_input(gpu, &spec.name, dy, w, d_out.view(), None));
                    let name = &self.layers[p].batchnorm.as_ref().expect("batch-normalised").name;
                    launches.push(nn::batchnorm_backward(
                        gpu, name, &bn, pre.view(), prev_out.view(), d_out.view(), bwd.d_pre[p].view(), &params.grads.buffer,
                    ));
                }
                _ => launches.push(nn::matmul_backward_input(
                    gpu,
                    &spec.name,
                    dy,
                    w,
                    bwd.d_pre[p].view(),
                    Some((prev_out.view(), self.layers[p].act)),
                )),
            }
        }
        launches
    }
}
