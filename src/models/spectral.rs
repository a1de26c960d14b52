//! Spectral norm on a network's layers (`LayerSpec::spectral`), as PyTorch's
//! `parametrizations.spectral_norm` in training mode: before each forward pass one power
//! iteration per head refreshes u, v and σ, and the network's passes read W / σ from a buffer of
//! their own (`Normalised`); after a backward that wrote weight gradients, each head's gradient
//! is carried from W / σ back to W. Each head is a matrix of its own, as each is a Linear of its
//! own in PyTorch.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::layers::LayerSpec;
use super::params::ParamLayout;
use super::network::Network;
use super::params::{Parameters, Weights};
use crate::gpu::{Gpu, GpuError, Launch, Tensor, View};
use crate::nn::{self, SpectralTensors};

/// The buffers a spectrally normalised network's training passes read and write.
pub struct Normalised {
    /// [layout.len]: what the network's passes read; only its layers' tensors are written
    pub values: Tensor,
    /// Per layer, per head: [nn::spectral_scratch_len] (the products, σ, the partial sums)
    scratch: Vec<Vec<Tensor>>,
}

impl Normalised {
    /// What the network's passes read: the normalised weights and the model's own state.
    pub fn weights<'a>(&'a self, params: &'a Parameters) -> Weights<'a> {
        Weights { values: &self.values.buffer, state: &params.state.buffer }
    }
}

impl Network {
    /// Whether any layer is spectrally normalised.
    pub fn is_spectral(&self) -> bool {
        self.layers.iter().any(|l| l.spectral)
    }

    /// The buffers of `Normalised`, None when no layer is spectrally normalised.
    pub fn normalised_buffers(&self, gpu: &Gpu, params: &Parameters) -> Result<Option<Normalised>, GpuError> {
        if !self.is_spectral() {
            return Ok(None);
        }
        let mut scratch = Vec::new();
        for (spec, offsets) in self.layers.iter().zip(&self.offsets) {
            let (rows, cols) = head_matrix(spec);
            let len = nn::spectral_scratch_len(rows, cols);
            scratch.push(offsets.spectral.iter().map(|_| Tensor::zeros(gpu, &format!("{}.spectral.scratch", spec.name), &[len])).collect::<Result<_, _>>()?);
        }
        let values = Tensor::zeros(gpu, "discriminator.normalised", &[params.layout.len])?;
        Ok(Some(Normalised { values, scratch }))
    }

    /// Each spectrally normalised head: its layer and its tensors.
    fn heads<'a>(&'a self, params: &'a Parameters, n: &'a Normalised) -> impl Iterator<Item = (usize, SpectralTensors<'a>)> + 'a {
        self.layers.iter().enumerate().flat_map(move |(l, spec)| {
            let (rows, cols) = head_matrix(spec);
            let offsets = &self.offsets[l];
            offsets.spectral.iter().zip(&n.scratch[l]).enumerate().map(move |(h, (&(u_off, v_off), scratch))| {
                let t = SpectralTensors {
                    values: &params.values.buffer,
                    normalised: &n.values.buffer,
                    grads: &params.grads.buffer,
                    state: &params.state.buffer,
                    scratch: &scratch.buffer,
                    w_off: offsets.weight + h * rows * cols,
                    rows,
                    cols,
                    u_off,
                    v_off,
                };
                (l, t)
            })
        })
    }

    /// Before a training forward pass: a power iteration per head, then `n.values` refreshed:
    /// every head's W / σ, the biases and the batch norms' parameters as they are.
    pub fn spectral_forward(&self, gpu: &Gpu, params: &Parameters, n: &Normalised) -> Vec<Launch> {
        let mut launches = Vec::new();
        for (l, t) in self.heads(params, n) {
            let spec = &self.layers[l];
            launches.extend(nn::spectral_power(gpu, &spec.name, &t));
            // The last head's copy takes every head's bias, which follow the weights.
            let last = t.w_off + t.rows * t.cols == self.offsets[l].bias;
            let biases = if last { spec.bias_len() } else { 0 };
            launches.push(nn::spectral_scale(gpu, &spec.name, &t, t.rows * t.cols + biases));
        }
        for (spec, offsets) in self.layers.iter().zip(&self.offsets) {
            let (Some(bn), Some((gamma, _, _))) = (&spec.batchnorm, offsets.batchnorm) else { continue };
            let len = 2 * spec.channels();
            let from = View::new(&params.values.buffer, gamma, 1, len);
            launches.push(nn::copy_columns(gpu, &bn.name, from, View::new(&n.values.buffer, gamma, 1, len)));
        }
        launches
    }

    /// After a backward pass wrote weight gradients through W / σ: each head's gradient carried
    /// back to W, with the u, v and σ of the forward pass it comes from.
    pub fn spectral_backward(&self, gpu: &Gpu, params: &Parameters, n: &Normalised) -> Vec<Launch> {
        self.heads(params, n).flat_map(|(l, t)| nn::spectral_backward(gpu, &self.layers[l].name, &t)).collect()
    }
}

/// One head's weight matrix, [rows, cols], as the power iteration sees it.
fn head_matrix(spec: &LayerSpec) -> (usize, usize) {
    let (rows, cols) = spec.weight_matrix();
    (rows / spec.head_names().len(), cols)
}

/// The seed's u and v come from a stream of their own, so a spectrally normalised network starts
/// from the same weights as the plain one of the same seed.
const SPECTRAL_SEED: u64 = 0x7370_6563_7472_616c;

/// Power iterations at the start, as PyTorch's `spectral_norm` runs when it wraps a layer.
const WARM_UP_ITERATIONS: usize = 15;

/// Each spectrally normalised head's u and v as PyTorch starts them: drawn N(0, 1) and
/// normalised, then `WARM_UP_ITERATIONS` power iterations on the initial weights `values`;
/// written into `state`.
pub(super) fn initial_vectors(layers: &[LayerSpec], params: &ParamLayout, state_layout: &ParamLayout, values: &[f32], state: &mut [f32], seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ SPECTRAL_SEED);
    for spec in layers.iter().filter(|l| l.spectral) {
        let (rows, cols) = head_matrix(spec);
        for head in spec.head_names() {
            let w: Vec<f64> = values[params.get(&spec.weight_name(&head)).range()].iter().map(|&x| f64::from(x)).collect();
            let mut draw = |n: usize| normalize((0..n).map(|_| StandardNormal.sample(&mut rng)).collect());
            let (mut u, mut v) = (draw(rows), draw(cols));
            for _ in 0..WARM_UP_ITERATIONS {
                u = normalize((0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum()).collect());
                v = normalize((0..cols).map(|c| (0..rows).map(|r| w[r * cols + c] * u[r]).sum()).collect());
            }
            let (u_name, v_name) = spec.spectral_names(&head);
            for (name, x) in [(u_name, u), (v_name, v)] {
                for (s, x) in state[state_layout.get(&name).range()].iter_mut().zip(x) {
                    *s = x as f32;
                }
            }
        }
    }
}

/// x / max(‖x‖, eps), as torch's `F.normalize`.
fn normalize(x: Vec<f64>) -> Vec<f64> {
    let norm = x.iter().map(|a| a * a).sum::<f64>().sqrt().max(f64::from(nn::SPECTRAL_EPS));
    x.into_iter().map(|a| a / norm).collect()
}
