//! What a network is made of, before any buffer exists: each layer's spec (Linear, optionally
//! batch-normalised or spectrally normalised, Conv2d, ConvTranspose2d; its names, shapes and
//! activation), and the initial values torch would give its parameters (and spectral norm's u
//! and v).

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, StandardNormal};

use super::params::ParamLayout;
use crate::nn::{Activation, ConvShape};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchnormSpec {
    /// e.g. `generator.bn2`
    pub name: String,
    pub eps: f32,
    pub momentum: f32,
    /// The most independently normalised batches one pass holds (`Forward::groups`): a
    /// discriminator's real and fake batches are 2.
    pub groups: usize,
}

impl BatchnormSpec {
    pub fn new(name: &str, eps: f32, momentum: f32) -> BatchnormSpec {
        BatchnormSpec { name: name.to_string(), eps, momentum, groups: 1 }
    }
}

/// What a layer's matmul computes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum LayerKind {
    Linear,
    Conv2d(ConvShape),
    /// Described by the Conv2d whose backward-input it is (`ConvShape::transposed`).
    ConvTranspose2d(ConvShape),
}

/// One layer, its activation, and an optional batch norm between the two (Linear layers).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerSpec {
    /// e.g. `generator.fc2`
    pub name: String,
    pub kind: LayerKind,
    pub inp: usize,
    pub out: usize,
    pub act: Activation,
    pub batchnorm: Option<BatchnormSpec>,
    /// Linear layers that share this matmul, `out / heads.len()` rows each, stored back to back
    /// (the VAE's `encoder.mu` and `encoder.logvar`); empty for one Linear called `name`.
    pub heads: Vec<String>,
    /// The last `pad` of the `inp` columns are zero padding (`ParamEntry::pad_cols`).
    pub pad: usize,
    /// Spectral norm on each head's weight (`torch.nn.utils.parametrizations.spectral_norm`):
    /// the passes read W / σ(W), and the weight and its u and v are named as PyTorch's
    /// parametrized module names them.
    pub spectral: bool,
}

impl LayerSpec {
    pub fn new(name: &str, inp: usize, out: usize, act: Activation) -> LayerSpec {
        LayerSpec { name: name.to_string(), kind: LayerKind::Linear, inp, out, act, batchnorm: None, heads: Vec::new(), pad: 0, spectral: false }
    }

    /// torch.nn.Conv2d of `shape`, NCHW rows in and out.
    pub fn conv2d(name: &str, shape: ConvShape, act: Activation) -> LayerSpec {
        LayerSpec { kind: LayerKind::Conv2d(shape), ..LayerSpec::new(name, shape.in_len(), shape.out_len(), act) }
    }

    /// torch.nn.ConvTranspose2d, given as the Conv2d it transposes (`ConvShape::transposed`).
    pub fn conv_transpose2d(name: &str, shape: ConvShape, act: Activation) -> LayerSpec {
        LayerSpec { kind: LayerKind::ConvTranspose2d(shape), ..LayerSpec::new(name, shape.out_len(), shape.in_len(), act) }
    }

    /// The convolution's geometry, for conv layers.
    pub fn conv_shape(&self) -> Option<ConvShape> {
        match self.kind {
            LayerKind::Linear => None,
            LayerKind::Conv2d(s) | LayerKind::ConvTranspose2d(s) => Some(s),
        }
    }

    /// The weight as the matmuls read it, [rows, cols]: Linear [out, in]; Conv2d
    /// [out_ch, in_ch·k·k]; ConvTranspose2d [in_ch, out_ch·k·k] (its PyTorch layout flattened).
    pub fn weight_matrix(&self) -> (usize, usize) {
        match self.conv_shape() {
            None => (self.out, self.inp),
            Some(s) => (s.out_ch, s.patch()),
        }
    }

    /// Each head's weight and bias shapes as PyTorch stores them.
    pub(super) fn param_shapes(&self) -> (Vec<usize>, Vec<usize>) {
        let k = |s: ConvShape| s.kernel;
        match self.kind {
            LayerKind::Linear => {
                let rows = self.out / self.head_names().len();
                (vec![rows, self.inp], vec![rows])
            }
            LayerKind::Conv2d(s) => (vec![s.out_ch, s.in_ch, k(s), k(s)], vec![s.out_ch]),
            LayerKind::ConvTranspose2d(s) => (vec![s.out_ch, s.in_ch, k(s), k(s)], vec![s.in_ch]),
        }
    }

    /// How many biases the layer has, every head's: Linear `out`, conv one per output channel.
    pub fn bias_len(&self) -> usize {
        match self.kind {
            LayerKind::Linear => self.out,
            LayerKind::Conv2d(s) => s.out_ch,
            LayerKind::ConvTranspose2d(s) => s.in_ch,
        }
    }

    /// The output's channels: a batch norm's width (Linear: every output; conv: out_ch).
    pub fn channels(&self) -> usize {
        self.out / self.pixels()
    }

    /// Output pixels per channel: 1 for Linear.
    pub fn pixels(&self) -> usize {
        match self.kind {
            LayerKind::Linear => 1,
            LayerKind::Conv2d(s) => s.pixels(),
            LayerKind::ConvTranspose2d(s) => s.in_h * s.in_w,
        }
    }

    /// PyTorch's fan-in for its default initialisation: a Linear layer's real inputs, a
    /// conv's `weight.size(1)·k·k` (for ConvTranspose2d that is its output channels).
    pub fn fan_in(&self) -> usize {
        match self.conv_shape() {
            None => self.inp - self.pad,
            Some(s) => s.patch(),
        }
    }

    /// This layer reading zero columns after its real input, to whole vec4s, so the fast
    /// matmul kernels can run it (a conditioned input: 784 + 10 columns).
    pub fn padded(self) -> LayerSpec {
        let inp = padded_width(self.inp);
        LayerSpec { pad: inp - self.inp, inp, ..self }
    }

    /// The name of a head's weight: `{head}.weight`, or under spectral norm the weight as
    /// trained, `{head}.parametrizations.weight.original`.
    pub fn weight_name(&self, head: &str) -> String {
        match self.spectral {
            true => format!("{head}.parametrizations.weight.original"),
            false => format!("{head}.weight"),
        }
    }

    /// Under spectral norm, the names of a head's u [rows] and v [cols] in the state, as PyTorch
    /// keeps them in its state dict.
    pub fn spectral_names(&self, head: &str) -> (String, String) {
        (format!("{head}.parametrizations.weight.0._u"), format!("{head}.parametrizations.weight.0._v"))
    }

    /// One head's weight matrix, [rows, cols]: what spectral norm normalises.
    pub fn head_matrix(&self) -> (usize, usize) {
        let (rows, cols) = self.weight_matrix();
        (rows / self.head_names().len(), cols)
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

/// How weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// torch.nn.Linear's default: weights and biases U(±1/sqrt(fan_in)).
    Torch,
    /// Weights N(0, 2/fan_in) (He), biases zero.
    KaimingNormal,
}

/// Initial values of a model's trainable parameters (`params`) and batch-norm statistics
/// (`state`), as torch would create them, from `seed`.
pub fn initial_values(layers: &[LayerSpec], params: &ParamLayout, state: &ParamLayout, init: Init, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut p = vec![0.0f32; params.len];
    let mut s = vec![0.0f32; state.len];
    for layer in layers {
        // Pad columns see only zeros: they are not part of the fan-in and stay zero.
        let fan_in = layer.fan_in();
        let cols = layer.weight_matrix().1;
        let real = |i: usize| i % cols < fan_in;
        for head in layer.head_names() {
            let bound = 1.0 / (fan_in as f64).sqrt();
            let w = params.get(&layer.weight_name(&head));
            let b = params.get(&format!("{head}.bias"));
            match init {
                Init::Torch => {
                    for (_, v) in p[w.range()].iter_mut().enumerate().filter(|(i, _)| real(*i)) {
                        *v = rng.random_range(-bound..bound) as f32;
                    }
                    for v in &mut p[b.range()] {
                        *v = rng.random_range(-bound..bound) as f32;
                    }
                }
                Init::KaimingNormal => {
                    let normal = Normal::new(0.0, (2.0 / fan_in as f64).sqrt()).expect("positive std");
                    for (_, v) in p[w.range()].iter_mut().enumerate().filter(|(i, _)| real(*i)) {
                        *v = normal.sample(&mut rng) as f32;
                    }
                }
            }
        }
        if let Some(bn) = &layer.batchnorm {
            p[params.get(&format!("{}.weight", bn.name)).range()].fill(1.0);
            s[state.get(&format!("{}.running_var", bn.name)).range()].fill(1.0);
        }
    }
    initial_vectors(layers, params, state, &p, &mut s, seed);
    (p, s)
}

/// The seed's u and v come from a stream of their own, so a spectrally normalised network starts
/// from the same weights as the plain one of the same seed.
const SPECTRAL_SEED: u64 = 0x7370_6563_7472_616c;

/// Power iterations at the start, as PyTorch's `spectral_norm` runs when it wraps a layer.
const WARM_UP_ITERATIONS: usize = 15;

/// Each spectrally normalised head's u and v as PyTorch starts them: drawn N(0, 1) and
/// normalised, then `WARM_UP_ITERATIONS` power iterations on the initial weights `values`;
/// written into `state`.
fn initial_vectors(layers: &[LayerSpec], params: &ParamLayout, state_layout: &ParamLayout, values: &[f32], state: &mut [f32], seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ SPECTRAL_SEED);
    for spec in layers.iter().filter(|l| l.spectral) {
        let (rows, cols) = spec.head_matrix();
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
    let norm = x.iter().map(|a| a * a).sum::<f64>().sqrt().max(f64::from(crate::nn::SPECTRAL_EPS));
    x.into_iter().map(|a| a / norm).collect()
}
