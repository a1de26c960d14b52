use bytemuck::{Pod, Zeroable};

use super::u32_of;
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `XentParams` in shaders/softmax_xent.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct XentParams {
    pub rows: u32,
    pub classes: u32,
    pub grad_scale: f32,
    pub _pad: u32,
}

/// Twin of `IwaeParams` in shaders/iwae.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct IwaeParams {
    pub rows: u32,
    pub latent: u32,
    pub k: u32,
    pub _pad: u32,
}

fn per_row(gpu: &Gpu, rows: usize) -> [u32; 3] {
    crate::gpu::grid_1d(u32_of(rows), gpu.limits.max_compute_workgroups_per_dimension)
}

/// grad = (softmax(logits) - onehot(labels)) · grad_scale, row_loss = -log softmax[label],
/// correct = [argmax == label].
#[allow(clippy::too_many_arguments)]
pub fn softmax_cross_entropy(
    gpu: &Gpu, label: &str, logits: View<'_>, labels: View<'_>, grad_scale: f32, grad: View<'_>, row_loss: View<'_>, correct: View<'_>,
) -> Launch {
    for v in [logits, labels, grad, row_loss, correct] {
        assert_eq!(v.offset, 0, "{label}: whole tensors");
    }
    assert_eq!(labels.rows * labels.cols, logits.rows, "{label}: one label per row");
    let params = XentParams { rows: u32_of(logits.rows), classes: u32_of(logits.cols), grad_scale, _pad: 0 };
    let bindings = [
        Binding { slot: 1, buffer: logits.buffer },
        Binding { slot: 2, buffer: labels.buffer },
        Binding { slot: 3, buffer: grad.buffer },
        Binding { slot: 4, buffer: row_loss.buffer },
        Binding { slot: 5, buffer: correct.buffer },
    ];
    // Per element 6 FLOPs (max, exp, sum, divide, subtract, scale); logits read, gradient
    // written; per row a label read and the loss and flag written.
    let (n, rows) = ((logits.rows * logits.cols) as u64, logits.rows as u64);
    Launch::new(gpu, Kernel::SoftmaxCrossEntropy, label, &params, &bindings, per_row(gpu, logits.rows))
        .with_cost(6 * n, 4 * (2 * n + 3 * rows), format!("{}x{}", logits.rows, logits.cols))
}

/// probs = softmax(logits) per row.
pub fn softmax_rows(gpu: &Gpu, label: &str, logits: View<'_>, probs: View<'_>) -> Launch {
    assert_eq!((logits.offset, probs.offset), (0, 0), "{label}: whole tensors");
    let params = XentParams { rows: u32_of(logits.rows), classes: u32_of(logits.cols), grad_scale: 0.0, _pad: 0 };
    let bindings = [Binding { slot: 1, buffer: logits.buffer }, Binding { slot: 3, buffer: probs.buffer }];
    let n = (logits.rows * logits.cols) as u64;
    Launch::new(gpu, Kernel::SoftmaxRows, label, &params, &bindings, per_row(gpu, logits.rows))
        .with_cost(4 * n, 8 * n, format!("{}x{}", logits.rows, logits.cols))
}

/// w [rows] = -recon + 1/2 Σ (eps² + logvar) - 1/2 Σ z²: the log importance weight of each row.
pub fn iwae_log_weight(gpu: &Gpu, label: &str, stats: View<'_>, eps: View<'_>, z: View<'_>, recon_row: View<'_>, w: View<'_>) -> Launch {
    assert_eq!((eps.rows, eps.cols * 2), (stats.rows, stats.cols), "{label}: eps shape");
    let rows = stats.rows;
    let params = IwaeParams { rows: u32_of(rows), latent: u32_of(eps.cols), k: 1, _pad: 0 };
    let bindings = [
        Binding { slot: 1, buffer: stats.buffer },
        Binding { slot: 2, buffer: eps.buffer },
        Binding { slot: 3, buffer: z.buffer },
        Binding { slot: 4, buffer: recon_row.buffer },
        Binding { slot: 5, buffer: w.buffer },
    ];
    // Per latent element 6 FLOPs; logvar, eps, z read; per row the loss read, the weight written.
    let n = (rows * eps.cols) as u64;
    Launch::new(gpu, Kernel::IwaeLogWeight, label, &params, &bindings, per_row(gpu, rows))
        .with_cost(6 * n, 4 * (3 * n + 2 * rows as u64), format!("{}x{}", rows, eps.cols))
}

/// out [rows / k] = log (1/k Σ exp values[g k .. g k + k]), stably.
pub fn logsumexp_groups(gpu: &Gpu, label: &str, values: View<'_>, k: usize, out: View<'_>) -> Launch {
    let rows = values.rows * values.cols;
    assert!(k > 0 && rows.is_multiple_of(k), "{label}: {rows} values do not split into groups of {k}");
    assert_eq!(out.rows * out.cols, rows / k, "{label}: one output per group");
    let params = IwaeParams { rows: u32_of(rows), latent: 0, k: u32_of(k), _pad: 0 };
    let bindings = [Binding { slot: 4, buffer: values.buffer }, Binding { slot: 5, buffer: out.buffer }];
    // Per value a max, an exp and an add; values read once per pass (two), groups written.
    Launch::new(gpu, Kernel::LogsumexpGroups, label, &params, &bindings, per_row(gpu, rows / k))
        .with_cost(3 * rows as u64, 4 * (2 * rows + rows / k) as u64, format!("{}x{k}", rows / k))
}
