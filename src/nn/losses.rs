use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `BceParams` in shaders/bce_logits.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct BceParams {
    pub rows: u32,
    pub cols: u32,
    pub use_target_tensor: u32,
    pub target_value: f32,
    pub grad_scale: f32,
    pub logit_off: u32,
    pub target_off: u32,
    pub _pad: u32,
}

/// Twin of `GanLossParams` in shaders/gan_loss.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct GanLossParams {
    pub batch: u32,
    pub real_label: f32,
    pub fake_label: f32,
    pub metric_slot: u32,
    pub parts: u32,
    pub g_off: u32,
    pub hinge: u32,
    pub _pad: u32,
}

/// The GAN's objective (`--loss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum GanLoss {
    /// Binary cross-entropy on D's logit, G's loss non-saturating; D(x) and D(G(z)) are D's
    /// mean probabilities.
    #[default]
    Bce,
    /// The hinge loss: D's max(0, 1 − D(x)) + max(0, 1 + D(G(z))), G's −D(G(z)); D(x) and
    /// D(G(z)) are D's mean raw outputs.
    Hinge,
}

/// Which of the GAN's two losses one `gan_loss` dispatch computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GanLossParts {
    /// Both from logits [2B] of one pass over [real; fake] (G-first order).
    Both,
    /// D's loss and the metrics D(x), D(G(z)) from logits [2B].
    Discriminator,
    /// G's loss from logits [B] of the fake rows alone (D-first order, after D's update).
    Generator,
}

/// Twin of `KlParams` in shaders/reparam_kl.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct KlParams {
    pub rows: u32,
    pub latent: u32,
    pub grad_scale: f32,
    pub _pad: u32,
}

/// Twin of `SumParams` in shaders/sum_accumulate.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SumParams {
    pub n: u32,
    pub slot: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// grad = (σ(logits) - targets) · grad_scale and row_loss[r] = Σ_cols BCE. `targets` is a
/// tensor of the logits' shape, or one constant for every element.
pub fn bce_logits(
    gpu: &Gpu, label: &str, logits: View<'_>, targets: Result<View<'_>, f32>, grad_scale: f32, grad: View<'_>, row_loss: View<'_>,
) -> Launch {
    assert_eq!((grad.rows, grad.cols), (logits.rows, logits.cols), "{label}: grad shape");
    assert_eq!((grad.offset, row_loss.offset), (0, 0), "{label}: outputs are whole tensors");
    assert_eq!(row_loss.rows * row_loss.cols, logits.rows, "{label}: one loss per row");
    let (target_buffer, p) = match targets {
        Ok(t) => {
            assert_eq!((t.rows, t.cols), (logits.rows, logits.cols), "{label}: targets shape");
            (t.buffer, (1, 0.0, t.offset))
        }
        Err(value) => (logits.buffer, (0, value, 0)),
    };
    let params = BceParams {
        rows: u32_of(logits.rows),
        cols: u32_of(logits.cols),
        use_target_tensor: p.0,
        target_value: p.1,
        grad_scale,
        logit_off: u32_of(logits.offset),
        target_off: u32_of(p.2),
        _pad: 0,
    };
    let bindings = [
        Binding { slot: 1, buffer: logits.buffer },
        Binding { slot: 2, buffer: target_buffer },
        Binding { slot: 3, buffer: grad.buffer },
        Binding { slot: 4, buffer: row_loss.buffer },
    ];
    // Per element 12 FLOPs (the loss 7 with exp and log, sigmoid 3, the scaled gradient 2);
    // logits (and targets) read and the gradient written, one loss per row written.
    let (n, rows) = ((logits.rows * logits.cols) as u64, logits.rows as u64);
    let inputs = if params.use_target_tensor == 1 { 2 } else { 1 };
    let grid = crate::gpu::grid_1d(u32_of(logits.rows), gpu.limits.max_compute_workgroups_per_dimension);
    Launch::new(gpu, Kernel::BceLogits, label, &params, &bindings, grid)
        .with_cost(12 * n, 4 * ((inputs + 1) * n + rows), format!("{}x{}", logits.rows, logits.cols))
}

/// The GAN's losses from D's logits: D's gradient [2B], G's [B], and the metrics (d_loss,
/// g_loss, mean D(x), mean D(G(z))) accumulated at `metric_slot`, for the `parts` asked.
#[allow(clippy::too_many_arguments)]
pub fn gan_loss(
    gpu: &Gpu, label: &str, loss: GanLoss, parts: GanLossParts, logits: View<'_>, real_label: f32, fake_label: f32, d_grad: View<'_>, g_grad: View<'_>,
    metrics: &wgpu::Buffer, metric_slot: usize,
) -> Launch {
    let batch = g_grad.rows * g_grad.cols;
    assert_eq!(logits.offset, 0, "{label}: whole logits");
    assert_eq!(d_grad.rows * d_grad.cols, 2 * batch, "{label}: d_grad holds 2B");
    let (bits, g_off, logit_rows) = match parts {
        GanLossParts::Both => (3, batch, 2 * batch),
        GanLossParts::Discriminator => (1, 0, 2 * batch),
        GanLossParts::Generator => (2, 0, batch),
    };
    assert_eq!(logits.rows * logits.cols, logit_rows, "{label}: logits for {parts:?}");
    let params = GanLossParams {
        batch: u32_of(batch),
        real_label,
        fake_label,
        metric_slot: u32_of(metric_slot),
        parts: bits,
        g_off: u32_of(g_off),
        hinge: u32::from(loss == GanLoss::Hinge),
        _pad: 0,
    };
    let bindings = [
        Binding { slot: 1, buffer: logits.buffer },
        Binding { slot: 2, buffer: d_grad.buffer },
        Binding { slot: 3, buffer: g_grad.buffer },
        Binding { slot: 4, buffer: metrics },
    ];
    // Per real/fake pair, D's part 29 FLOPs (two losses 14, two sigmoids 6, two gradients 6,
    // three sums 3; 2 logits read, 2 gradients written) and G's 14 (a loss 7, a sigmoid 3, a
    // gradient 3, a sum; 1 logit read, 1 gradient written); the metrics read and written.
    let b = batch as u64;
    let (flops, words) = match parts {
        GanLossParts::Both => (40 * b, 5 * b + 8),
        GanLossParts::Discriminator => (29 * b, 4 * b + 6),
        GanLossParts::Generator => (14 * b, 2 * b + 2),
    };
    Launch::new(gpu, Kernel::GanLoss, label, &params, &bindings, [1, 1, 1]).with_cost(flops, 4 * words, format!("{logit_rows}"))
}

fn kl_params(stats: View<'_>, grad_scale: f32) -> KlParams {
    KlParams {
        rows: u32_of(stats.rows),
        latent: u32_of(stats.cols / 2),
        grad_scale,
        _pad: 0,
    }
}

/// z = mu + exp(logvar/2) · eps and kl_row, from stats [rows, 2 latent] = mu | logvar.
pub fn reparam_kl_forward(gpu: &Gpu, label: &str, stats: View<'_>, eps: View<'_>, z: View<'_>, kl_row: View<'_>) -> Launch {
    assert_eq!((eps.rows, eps.cols * 2), (stats.rows, stats.cols), "{label}: eps shape");
    assert_eq!((z.rows, z.cols), (eps.rows, eps.cols), "{label}: z shape");
    let bindings = [
        Binding { slot: 1, buffer: stats.buffer },
        Binding { slot: 2, buffer: eps.buffer },
        Binding { slot: 3, buffer: z.buffer },
        Binding { slot: 4, buffer: kl_row.buffer },
    ];
    let grid = crate::gpu::grid_1d(u32_of(stats.rows), gpu.limits.max_compute_workgroups_per_dimension);
    // Per latent element 9 FLOPs (z 3 with an exp, the KL term 6 with an exp); mu, logvar, eps
    // read and z written, one KL per row written.
    let (n, rows) = ((z.rows * z.cols) as u64, z.rows as u64);
    Launch::new(gpu, Kernel::ReparamKlForward, label, &kl_params(stats, 0.0), &bindings, grid)
        .with_cost(9 * n, 4 * (4 * n + rows), format!("{}x{}", z.rows, z.cols))
}

/// dstats = [dz + s·mu | dz·eps·exp(logvar/2)/2 + s·(exp(logvar) - 1)/2].
pub fn reparam_kl_backward(gpu: &Gpu, label: &str, stats: View<'_>, eps: View<'_>, dz: View<'_>, dstats: View<'_>, grad_scale: f32) -> Launch {
    assert_eq!((dz.rows, dz.cols), (eps.rows, eps.cols), "{label}: dz shape");
    assert_eq!((dstats.rows, dstats.cols), (stats.rows, stats.cols), "{label}: dstats shape");
    let bindings = [
        Binding { slot: 1, buffer: stats.buffer },
        Binding { slot: 2, buffer: eps.buffer },
        Binding { slot: 3, buffer: dz.buffer },
        Binding { slot: 4, buffer: dstats.buffer },
    ];
    // Per latent element 12 FLOPs (dmu 2, dlogvar 10 with two exps); mu, logvar, eps, dz read
    // and dmu, dlogvar written.
    let n = dz.rows * dz.cols;
    Launch::new(gpu, Kernel::ReparamKlBackward, label, &kl_params(stats, grad_scale), &bindings, grid_for(gpu, n, 256))
        .with_cost(12 * n as u64, 24 * n as u64, format!("{}x{}", dz.rows, dz.cols))
}

/// metrics[slot] += scale · Σ values.
pub fn sum_accumulate(gpu: &Gpu, label: &str, values: View<'_>, metrics: &wgpu::Buffer, slot: usize, scale: f32) -> Launch {
    assert_eq!(values.offset, 0, "{label}: whole values");
    let n = values.rows * values.cols;
    let params = SumParams {
        n: u32_of(n),
        slot: u32_of(slot),
        scale,
        _pad: 0,
    };
    let bindings = [Binding { slot: 1, buffer: values.buffer }, Binding { slot: 2, buffer: metrics }];
    // One add per value; the values read, the slot read and written.
    Launch::new(gpu, Kernel::SumAccumulate, label, &params, &bindings, [1, 1, 1]).with_cost(n as u64 + 1, 4 * n as u64 + 8, format!("{n}"))
}
