//! Spectral norm on a network's layers (`LayerSpec::spectral`), as PyTorch's
//! `parametrizations.spectral_norm` in training mode: before each forward pass one power
//! iteration per head refreshes u, v and σ, and the network's passes read W / σ from a buffer of
//! their own (`Normalised`); after a backward that wrote weight gradients, each head's gradient
//! is carried from W / σ back to W. Each head is a matrix of its own, as each is a Linear of its
//! own in PyTorch.

use super::network::Network;
use super::params::{Parameters, Weights};
use crate::gpu::{Gpu, GpuError, Launch, Tensor, View};
use crate::nn::{self, SpectralTensors};

/// The buffers a spectrally normalised network's training passes read and write.
pub struct Normalised {
    /// [layout.len]: what the network's passes read; only its layers' tensors are written
    pub values: Tensor,
    /// Per layer, per head: [nn::spectral_scratch_len] (the products, σ, ⟨G, W_sn⟩ and its partial sums)
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
            let (rows, cols) = spec.head_matrix();
            let len = nn::spectral_scratch_len(rows, cols);
            scratch.push(offsets.spectral.iter().map(|_| Tensor::zeros(gpu, &format!("{}.spectral.scratch", spec.name), &[len])).collect::<Result<_, _>>()?);
        }
        let values = Tensor::zeros(gpu, "discriminator.normalised", &[params.layout.len])?;
        Ok(Some(Normalised { values, scratch }))
    }

    /// Each spectrally normalised head: its layer and its tensors.
    fn heads<'a>(&'a self, params: &'a Parameters, n: &'a Normalised) -> impl Iterator<Item = (usize, SpectralTensors<'a>)> + 'a {
        self.layers.iter().enumerate().flat_map(move |(l, spec)| {
            let (rows, cols) = spec.head_matrix();
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
