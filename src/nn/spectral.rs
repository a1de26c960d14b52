use bytemuck::{Pod, Zeroable};

use super::{grid_for, matmul_backward_input, matmul_forward, u32_of, Activation};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// PyTorch's `spectral_norm` eps: a norm below it divides by it instead.
pub const SPECTRAL_EPS: f32 = 1e-12;

/// The most partial sums of ⟨G, W_sn⟩ (shaders/spectral_norm.wgsl): few enough that one
/// workgroup sums them all in one pass of 256 threads.
const PARTIALS_MOST: usize = 256;

/// Twin of `SpectralParams` in shaders/spectral_norm.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SpectralParams {
    pub rows: u32,
    pub cols: u32,
    pub w_off: u32,
    pub u_off: u32,
    pub v_off: u32,
    pub sigma_off: u32,
    pub into: u32,
    pub eps: f32,
    pub n: u32,
    pub scaled: u32,
    pub partials: u32,
    pub per_partial: u32,
}

/// One weight matrix under spectral norm and the buffers around it.
#[derive(Clone, Copy)]
pub struct SpectralTensors<'a> {
    /// W [rows, cols] at `w_off`: Linear [out, in], Conv2d [out_ch, in_ch·k·k]
    pub values: &'a wgpu::Buffer,
    /// W / σ at `w_off`: what the network's passes read
    pub normalised: &'a wgpu::Buffer,
    /// d loss / d W_sn at `w_off` after the backward, d loss / d W after `spectral_backward`
    pub grads: &'a wgpu::Buffer,
    /// u [rows] at `u_off`, v [cols] at `v_off` (whole blocks: the matmuls read them)
    pub state: &'a wgpu::Buffer,
    /// [spectral_scratch_len(rows, cols)]: the products, σ, ⟨G, W_sn⟩ and its partial sums
    pub scratch: &'a wgpu::Buffer,
    pub w_off: usize,
    pub rows: usize,
    pub cols: usize,
    pub u_off: usize,
    pub v_off: usize,
}

/// The scratch one matrix needs: a product (rows or cols values), σ, ⟨G, W_sn⟩, its partial sums.
pub fn spectral_scratch_len(rows: usize, cols: usize) -> usize {
    rows.max(cols) + 2 + PARTIALS_MOST
}

impl SpectralTensors<'_> {
    fn params(&self) -> SpectralParams {
        let n = self.rows * self.cols;
        let per_partial = n.div_ceil(PARTIALS_MOST).max(256);
        SpectralParams {
            rows: u32_of(self.rows),
            cols: u32_of(self.cols),
            w_off: u32_of(self.w_off),
            u_off: u32_of(self.u_off),
            v_off: u32_of(self.v_off),
            sigma_off: u32_of(self.rows.max(self.cols)),
            into: 0,
            eps: SPECTRAL_EPS,
            n: 0,
            scaled: 0,
            partials: u32_of(n.div_ceil(per_partial)),
            per_partial: u32_of(per_partial),
        }
    }

    fn w(&self) -> View<'_> {
        View::new(self.values, self.w_off, self.rows, self.cols)
    }
}

/// One power iteration in training mode, as PyTorch's: u = normalize(W v), v = normalize(Wᵀ u),
/// then σ = u · (W v) into the scratch.
pub fn spectral_power(gpu: &Gpu, label: &str, t: &SpectralTensors<'_>) -> Vec<Launch> {
    let (rows, cols) = (t.rows, t.cols);
    let label = format!("{label}.spectral");
    let (u, v) = (View::new(t.state, t.u_off, 1, rows), View::new(t.state, t.v_off, 1, cols));
    let (w_v, u_w) = (View::new(t.scratch, 0, 1, rows), View::new(t.scratch, 0, 1, cols));
    let bindings = [Binding { slot: 1, buffer: t.scratch }, Binding { slot: 2, buffer: t.state }];
    let one = |kernel, into: u32, n: usize| {
        let p = SpectralParams { into, ..t.params() };
        // Per value a square (or product) and a sum, then a division; each value read and
        // written once.
        Launch::new(gpu, kernel, &label, &p, &bindings, [1, 1, 1]).with_cost(3 * n as u64, 8 * n as u64, format!("{n} values"))
    };
    vec![
        matmul_forward(gpu, &label, v, t.w(), None, w_v, Activation::Identity),
        one(Kernel::SpectralNormalise, 0, rows),
        matmul_backward_input(gpu, &label, u, t.w(), u_w, None),
        one(Kernel::SpectralNormalise, 1, cols),
        matmul_forward(gpu, &label, v, t.w(), None, w_v, Activation::Identity),
        one(Kernel::SpectralSigma, 0, rows),
    ]
}

/// Copies `n` values from `w_off` of `values` into `normalised`, the weight's (the first
/// rows·cols) divided by σ: W_sn and the tensors after it that the network reads beside it.
pub fn spectral_scale(gpu: &Gpu, label: &str, t: &SpectralTensors<'_>, n: usize) -> Launch {
    let scaled = t.rows * t.cols;
    assert!(n >= scaled, "{label}: the copy holds the weight");
    let p = SpectralParams { n: u32_of(n), scaled: u32_of(scaled), ..t.params() };
    let bindings = [Binding { slot: 1, buffer: t.scratch }, Binding { slot: 3, buffer: t.values }, Binding { slot: 4, buffer: t.normalised }];
    // A division per weight; each value read and written once.
    Launch::new(gpu, Kernel::SpectralScale, format!("{label}.spectral"), &p, &bindings, grid_for(gpu, n, 256))
        .with_cost(scaled as u64, 8 * n as u64, format!("{}x{} +{}", t.rows, t.cols, n - scaled))
}

/// The backward of W ↦ W / σ(W) in place in `grads`: dW = (G − ⟨G, W_sn⟩ u vᵀ) / σ, with u, v
/// and σ of the forward pass that G comes from.
pub fn spectral_backward(gpu: &Gpu, label: &str, t: &SpectralTensors<'_>) -> Vec<Launch> {
    let p = t.params();
    let n = (t.rows * t.cols) as u64;
    let label = format!("{label}.spectral");
    let dot = [Binding { slot: 1, buffer: t.scratch }, Binding { slot: 4, buffer: t.normalised }, Binding { slot: 5, buffer: t.grads }];
    let fix = [Binding { slot: 1, buffer: t.scratch }, Binding { slot: 2, buffer: t.state }, Binding { slot: 5, buffer: t.grads }];
    let total = [Binding { slot: 1, buffer: t.scratch }];
    let detail = format!("{}x{}", t.rows, t.cols);
    let partials = u64::from(p.partials);
    vec![
        // A product and a sum per weight, two values read.
        Launch::new(gpu, Kernel::SpectralDot, &label, &p, &dot, crate::gpu::grid_1d(p.partials, gpu.limits.max_compute_workgroups_per_dimension))
            .with_cost(2 * n, 8 * n, detail.clone()),
        // One workgroup sums the partial sums, so the correction reads one number.
        Launch::new(gpu, Kernel::SpectralTotal, &label, &p, &total, [1, 1, 1]).with_cost(partials, 4 * partials, format!("{partials} partial sums")),
        // Two products, a difference and a division per weight; read and written once.
        Launch::new(gpu, Kernel::SpectralGrad, &label, &p, &fix, grid_for(gpu, t.rows * t.cols, 256)).with_cost(4 * n, 8 * n, detail),
    ]
}
