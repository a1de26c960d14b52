//! The CPU twin of models/mlp.rs: the same layers over the same flat parameter layout, in f64,
//! built from the reference kernels.

use super::{
    batchnorm_backward, batchnorm_forward_train, conv2d_backward_input, conv2d_backward_weight, conv2d_forward, conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight, conv_transpose2d_forward, matmul_backward_input, matmul_backward_weight, matmul_forward, transpose_blocks, BatchnormSaved,
};
use crate::models::layers::{LayerKind, LayerSpec};
use crate::models::ParamLayout;
use crate::nn::Activation;

/// A layer's offsets in the flat buffers, found by name as the GPU side allocated them.
struct Offsets {
    w: usize,
    b: usize,
    /// weight and bias lengths
    w_len: usize,
    b_len: usize,
    /// gamma, beta, running_mean
    bn: Option<(usize, usize, usize)>,
}

fn offsets(spec: &LayerSpec, params: &ParamLayout, state: &ParamLayout) -> Offsets {
    let head = &spec.head_names()[0];
    let (rows, cols) = spec.weight_matrix();
    let b = params.get(&format!("{head}.bias")).offset;
    Offsets {
        w: params.get(&spec.weight_name(head)).offset,
        b,
        w_len: rows * cols,
        b_len: spec.bias_len(),
        bn: spec.batchnorm.as_ref().map(|bn| {
            (
                params.get(&format!("{}.weight", bn.name)).offset,
                params.get(&format!("{}.bias", bn.name)).offset,
                state.get(&format!("{}.running_mean", bn.name)).offset,
            )
        }),
    }
}

pub struct MlpForward {
    pub pre: Vec<Option<Vec<f64>>>,
    pub out: Vec<Vec<f64>>,
    /// Per batch-normalised layer, each group's statistics.
    saved: Vec<Option<Vec<BatchnormSaved>>>,
    /// The rows as this many equal batches, each batch-normalised on its own.
    groups: usize,
}

/// A layer's product, its activation applied.
fn layer_forward(spec: &LayerSpec, input: &[f64], w: &[f64], b: &[f64], rows: usize, act: Activation) -> Vec<f64> {
    match spec.kind {
        LayerKind::Linear => matmul_forward(input, w, Some(b), rows, spec.inp, spec.out, act),
        LayerKind::Conv2d(s) => conv2d_forward(input, w, Some(b), &s, rows, act),
        LayerKind::ConvTranspose2d(s) => conv_transpose2d_forward(input, w, Some(b), &s, rows, act),
    }
}

/// The gradient at a layer's input from `dy` at its output, times act'(prev) when given.
fn layer_backward_input(spec: &LayerSpec, dy: &[f64], w: &[f64], prev: Option<&[f64]>, rows: usize, act: Activation) -> Vec<f64> {
    match spec.kind {
        LayerKind::Linear => matmul_backward_input(dy, w, prev, rows, spec.inp, spec.out, act),
        LayerKind::Conv2d(s) => conv2d_backward_input(dy, w, prev, &s, rows, act),
        LayerKind::ConvTranspose2d(s) => conv_transpose2d_backward_input(dy, w, prev, &s, rows, act),
    }
}

/// [rows, channels·hw] NCHW ↔ [rows·hw, channels]: batch norm's columns are channels, so
/// BatchNorm2d is BatchNorm1d over the pixels made rows (for hw = 1 nothing moves).
fn channels_last(v: &[f64], rows: usize, channels: usize, hw: usize) -> Vec<f64> {
    transpose_blocks(v, rows, channels, hw)
}

fn channels_first(v: &[f64], rows: usize, channels: usize, hw: usize) -> Vec<f64> {
    transpose_blocks(v, rows, hw, channels)
}

/// Forward in training mode; batch-norm running statistics in `state` are updated.
pub fn mlp_forward(layers: &[LayerSpec], params: &ParamLayout, state_layout: &ParamLayout, values: &[f64], state: &mut [f64], x: &[f64], rows: usize) -> MlpForward {
    mlp_forward_grouped(layers, params, state_layout, values, state, x, rows, 1)
}

/// `mlp_forward` with batch norm over `groups` equal batches of the rows, one after the other,
/// as that many calls of the network would compute them.
#[allow(clippy::too_many_arguments)]
pub fn mlp_forward_grouped(
    layers: &[LayerSpec], params: &ParamLayout, state_layout: &ParamLayout, values: &[f64], state: &mut [f64], x: &[f64], rows: usize, groups: usize,
) -> MlpForward {
    let mut fwd = MlpForward { pre: Vec::new(), out: Vec::new(), saved: Vec::new(), groups };
    let per_group = rows / groups;
    for (l, spec) in layers.iter().enumerate() {
        let o = offsets(spec, params, state_layout);
        let input = if l == 0 { x } else { &fwd.out[l - 1] };
        let (w, b) = (&values[o.w..o.w + o.w_len], &values[o.b..o.b + o.b_len]);
        match (o.bn, &spec.batchnorm) {
            (Some((g, be, st)), Some(bn)) => {
                let pre = layer_forward(spec, input, w, b, rows, Activation::Identity);
                let (n, hw) = (spec.channels(), spec.pixels());
                let (rm, rv) = state[st..st + 2 * n].split_at_mut(n);
                let mut out = Vec::with_capacity(pre.len());
                let mut saved = Vec::new();
                for group in pre.chunks(per_group * spec.out) {
                    let (y, s) = batchnorm_forward_train(
                        &channels_last(group, per_group, n, hw), &values[g..g + n], &values[be..be + n], per_group * hw, n, f64::from(bn.eps),
                        f64::from(bn.momentum), spec.act, rm, rv,
                    );
                    out.extend(channels_first(&y, per_group, n, hw));
                    saved.push(s);
                }
                fwd.pre.push(Some(pre));
                fwd.out.push(out);
                fwd.saved.push(Some(saved));
            }
            _ => {
                fwd.pre.push(None);
                fwd.out.push(layer_forward(spec, input, w, b, rows, spec.act));
                fwd.saved.push(None);
            }
        }
    }
    fwd
}

/// Backpropagates `d_last` (the gradient at the last matmul's output); with `grads`, writes the
/// parameter gradients there. Returns the gradient at the input, times the derivative of
/// `input_act` evaluated at the input when given.
#[allow(clippy::too_many_arguments)]
pub fn mlp_backward(
    layers: &[LayerSpec], params: &ParamLayout, state_layout: &ParamLayout, values: &[f64], x: &[f64], fwd: &MlpForward, rows: usize,
    d_last: Vec<f64>, mut grads: Option<&mut [f64]>, input_act: Option<Activation>,
) -> Vec<f64> {
    let mut dy = d_last;
    for l in (0..layers.len()).rev() {
        let spec = &layers[l];
        let o = offsets(spec, params, state_layout);
        let input = if l == 0 { x } else { &fwd.out[l - 1] };
        if let Some(g) = grads.as_deref_mut() {
            let (dw, rest) = g[o.w..].split_at_mut(o.w_len);
            let db = &mut rest[o.b - o.w - o.w_len..][..o.b_len];
            match spec.kind {
                LayerKind::Linear => matmul_backward_weight(&dy, input, rows, spec.inp, spec.out, dw, Some(db), false),
                LayerKind::Conv2d(s) => conv2d_backward_weight(&dy, input, &s, rows, dw, Some(db)),
                LayerKind::ConvTranspose2d(s) => conv_transpose2d_backward_weight(&dy, input, &s, rows, dw, Some(db)),
            }
        }
        let w = &values[o.w..o.w + o.w_len];
        if l == 0 {
            return layer_backward_input(spec, &dy, w, input_act.map(|_| x), rows, input_act.unwrap_or(Activation::Identity));
        }
        let p = &layers[l - 1];
        let po = offsets(p, params, state_layout);
        dy = match (po.bn, &fwd.saved[l - 1], &fwd.pre[l - 1]) {
            (Some((gamma, beta, _)), Some(saved), Some(pre)) => {
                let d_out = layer_backward_input(spec, &dy, w, None, rows, Activation::Identity);
                let (n, hw) = (p.channels(), p.pixels());
                let per_group = rows / fwd.groups;
                let cl = |v: &[f64], i: usize| channels_last(&v[i * per_group * p.out..(i + 1) * per_group * p.out], per_group, n, hw);
                let (mut dx, mut dgamma, mut dbeta) = (Vec::with_capacity(d_out.len()), vec![0.0; n], vec![0.0; n]);
                for (i, s) in saved.iter().enumerate() {
                    let (dxg, dg, db) =
                        batchnorm_backward(&cl(&d_out, i), &cl(&fwd.out[l - 1], i), &cl(pre, i), &values[gamma..gamma + n], s, per_group * hw, n, p.act);
                    dx.extend(channels_first(&dxg, per_group, n, hw));
                    dgamma.iter_mut().zip(&dg).for_each(|(a, b)| *a += b);
                    dbeta.iter_mut().zip(&db).for_each(|(a, b)| *a += b);
                }
                if let Some(g) = grads.as_deref_mut() {
                    g[gamma..gamma + n].copy_from_slice(&dgamma);
                    g[beta..beta + n].copy_from_slice(&dbeta);
                }
                dx
            }
            _ => layer_backward_input(spec, &dy, w, Some(&fwd.out[l - 1]), rows, p.act),
        };
    }
    unreachable!("the loop returns at layer 0")
}

impl MlpForward {
    /// Rows `start..start + rows` of every activation, for a backward pass over part of the
    /// batch: whole groups, when batch norm couples the rows of a group.
    pub fn rows(&self, start: usize, rows: usize, widths: &[usize]) -> MlpForward {
        let total = self.out[0].len() / widths[0];
        let per_group = total / self.groups;
        assert!(start.is_multiple_of(per_group) && rows.is_multiple_of(per_group), "batch norm couples the rows of a group");
        let window = |v: &Vec<f64>, w: usize| v[start * w..(start + rows) * w].to_vec();
        MlpForward {
            pre: self.pre.iter().zip(widths).map(|(p, &w)| p.as_ref().map(|p| window(p, w))).collect(),
            out: self.out.iter().zip(widths).map(|(o, &w)| window(o, w)).collect(),
            saved: self.saved.iter().map(|s| s.as_ref().map(|s| s[start / per_group..(start + rows) / per_group].to_vec())).collect(),
            groups: rows / per_group,
        }
    }
}
