//! Spectral norm (shaders/spectral_norm.wgsl) as PyTorch's `parametrizations.spectral_norm`
//! computes it in training mode, and the backward its autograd takes through W / σ(W).

use crate::models::layers::LayerSpec;
use crate::models::ParamLayout;

const EPS: f64 = 1e-12;

fn normalize(x: Vec<f64>) -> Vec<f64> {
    let norm = x.iter().map(|a| a * a).sum::<f64>().sqrt().max(EPS);
    x.into_iter().map(|a| a / norm).collect()
}

fn w_times(w: &[f64], v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum()).collect()
}

/// One power iteration on W [rows, cols], updating u [rows] and v [cols]; returns σ = u·(W v).
pub fn spectral_power(w: &[f64], rows: usize, cols: usize, u: &mut Vec<f64>, v: &mut Vec<f64>) -> f64 {
    *u = normalize(w_times(w, v, rows, cols));
    *v = normalize((0..cols).map(|c| (0..rows).map(|r| w[r * cols + c] * u[r]).sum()).collect());
    u.iter().zip(w_times(w, v, rows, cols)).map(|(a, b)| a * b).sum()
}

/// d loss / d W from G = d loss / d (W / σ), with u and v held constant as autograd holds them:
/// G / σ − (⟨G, W⟩ / σ²) u vᵀ.
pub fn spectral_backward(g: &[f64], w: &[f64], u: &[f64], v: &[f64], sigma: f64) -> Vec<f64> {
    let dot: f64 = g.iter().zip(w).map(|(a, b)| a * b).sum();
    let cols = v.len();
    g.iter().enumerate().map(|(i, gi)| gi / sigma - dot / (sigma * sigma) * u[i / cols] * v[i % cols]).collect()
}

/// A spectrally normalised head after its forward's power iteration: what its backward needs.
pub struct SpectralHead {
    pub w_off: usize,
    pub u: Vec<f64>,
    pub v: Vec<f64>,
    pub sigma: f64,
}

/// The values a spectrally normalised network's pass reads: `values` with each head's weight
/// divided by its σ after one power iteration, which updates u and v in `state`.
pub fn spectral_forward(layers: &[LayerSpec], layout: &ParamLayout, state_layout: &ParamLayout, values: &[f64], state: &mut [f64]) -> (Vec<f64>, Vec<SpectralHead>) {
    let mut read = values.to_vec();
    let mut heads = Vec::new();
    for spec in layers.iter().filter(|l| l.spectral) {
        for head in spec.head_names() {
            let w_range = layout.get(&spec.weight_name(&head)).range();
            let (u_name, v_name) = spec.spectral_names(&head);
            let (u_range, v_range) = (state_layout.get(&u_name).range(), state_layout.get(&v_name).range());
            let (mut u, mut v) = (state[u_range.clone()].to_vec(), state[v_range.clone()].to_vec());
            let sigma = spectral_power(&values[w_range.clone()], u.len(), v.len(), &mut u, &mut v);
            for x in &mut read[w_range.clone()] {
                *x /= sigma;
            }
            state[u_range].copy_from_slice(&u);
            state[v_range].copy_from_slice(&v);
            heads.push(SpectralHead { w_off: w_range.start, u, v, sigma });
        }
    }
    (read, heads)
}

/// `grads` of the weights a backward through `spectral_forward`'s values wrote, carried back to
/// the weights as trained (`values`).
pub fn spectral_grads(heads: &[SpectralHead], values: &[f64], grads: &mut [f64]) {
    for h in heads {
        let range = h.w_off..h.w_off + h.u.len() * h.v.len();
        let fixed = spectral_backward(&grads[range.clone()], &values[range.clone()], &h.u, &h.v, h.sigma);
        grads[range].copy_from_slice(&fixed);
    }
}
