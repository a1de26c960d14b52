use bytemuck::{Pod, Zeroable};

use super::{u32_of, Activation};
use crate::gpu::{grid_rows, Binding, Gpu, Kernel, Launch, View};

/// Twin of `MatmulParams` in shaders/matmul.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub act: u32,
    pub a_row: u32,
    pub a_col: u32,
    pub b_row: u32,
    pub b_col: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub d_off: u32,
    pub bias_off: u32,
    pub flags: u32,
    pub slope: f32,
    pub _pad: u32,
}

const FLAG_BIAS: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;
const TILE: usize = 64;

fn matmul_launch(gpu: &Gpu, kernel: Kernel, label: &str, p: MatmulParams, bindings: &[Binding<'_>], extra_col: bool) -> Launch {
    let cols = p.n as usize + usize::from(extra_col);
    let grid = grid_rows(
        u32_of(cols.div_ceil(TILE)),
        u32_of((p.m as usize).div_ceil(TILE)),
        gpu.limits.max_compute_workgroups_per_dimension,
    );
    let (m, n, k) = (u64::from(p.m), u64::from(p.n), u64::from(p.k));
    Launch::new(gpu, kernel, label, &p, bindings, grid).with_cost(2 * m * n * k, 4 * (m * k + k * n + m * n))
}

/// y [rows, out] = act(x [rows, in] · wᵀ + b): w is [out, in] in the parameter buffer, the bias
/// (`out` values) at element `bias` of the same buffer.
pub fn matmul_forward(gpu: &Gpu, label: &str, x: View<'_>, w: View<'_>, bias: Option<usize>, y: View<'_>, act: Activation) -> Launch {
    let p = forward_params(label, x, w, bias, y, act);
    let bindings = [
        Binding { slot: 1, buffer: x.buffer },
        Binding { slot: 2, buffer: w.buffer },
        Binding { slot: 3, buffer: y.buffer },
    ];
    matmul_launch(gpu, Kernel::MatmulForward, label, p, &bindings, false)
}

/// The forward layout's params: A = x, B = wᵀ read through w's strides.
pub fn forward_params(label: &str, x: View<'_>, w: View<'_>, bias: Option<usize>, y: View<'_>, act: Activation) -> MatmulParams {
    assert_eq!(x.cols, w.cols, "{label}: x has {} columns, w expects {}", x.cols, w.cols);
    assert_eq!((y.rows, y.cols), (x.rows, w.rows), "{label}: output shape");
    MatmulParams {
        m: u32_of(x.rows),
        n: u32_of(w.rows),
        k: u32_of(x.cols),
        act: act.id(),
        a_row: u32_of(x.cols),
        a_col: 1,
        b_row: 1,
        b_col: u32_of(w.cols),
        a_off: u32_of(x.offset),
        b_off: u32_of(w.offset),
        c_off: u32_of(y.offset),
        d_off: 0,
        bias_off: u32_of(bias.unwrap_or(0)),
        flags: if bias.is_some() { FLAG_BIAS } else { 0 },
        slope: act.slope(),
        _pad: 0,
    }
}

/// dx [rows, in] = (dy [rows, out] · w) ⊙ act'(prev), where `prev` is the previous layer's
/// activated output (the layer's input) and `act` that layer's activation.
pub fn matmul_backward_input(gpu: &Gpu, label: &str, dy: View<'_>, w: View<'_>, dx: View<'_>, prev: Option<(View<'_>, Activation)>) -> Launch {
    // Never read with the identity; any read-only buffer fills the slot.
    let d = prev.map_or(dy.buffer, |(d, _)| d.buffer);
    let p = backward_input_params(label, dy, w, dx, prev);
    let bindings = [
        Binding { slot: 1, buffer: dy.buffer },
        Binding { slot: 2, buffer: w.buffer },
        Binding { slot: 3, buffer: dx.buffer },
        Binding { slot: 4, buffer: d },
    ];
    matmul_launch(gpu, Kernel::MatmulBackwardInput, label, p, &bindings, false)
}

/// The backward-input layout's params: A = dy, B = w as stored.
pub fn backward_input_params(label: &str, dy: View<'_>, w: View<'_>, dx: View<'_>, prev: Option<(View<'_>, Activation)>) -> MatmulParams {
    assert_eq!(dy.cols, w.rows, "{label}: dy has {} columns, w has {} rows", dy.cols, w.rows);
    assert_eq!((dx.rows, dx.cols), (dy.rows, w.cols), "{label}: dx shape");
    let (d_off, act) = match prev {
        Some((d, act)) => {
            assert_eq!((d.rows, d.cols), (dx.rows, dx.cols), "{label}: activation shape");
            (d.offset, act)
        }
        None => (0, Activation::Identity),
    };
    MatmulParams {
        m: u32_of(dy.rows),
        n: u32_of(w.cols),
        k: u32_of(w.rows),
        act: act.id(),
        a_row: u32_of(dy.cols),
        a_col: 1,
        b_row: u32_of(w.cols),
        b_col: 1,
        a_off: u32_of(dy.offset),
        b_off: u32_of(w.offset),
        c_off: u32_of(dx.offset),
        d_off: u32_of(d_off),
        bias_off: 0,
        flags: 0,
        slope: act.slope(),
        _pad: 0,
    }
}

/// dw [out, in] (+)= dyᵀ · x and, with `bias`, db (+)= Σ_rows dy at element `bias` of dw's
/// buffer, in the same dispatch.
pub fn matmul_backward_weight(gpu: &Gpu, label: &str, dy: View<'_>, x: View<'_>, dw: View<'_>, bias: Option<usize>, accumulate: bool) -> Launch {
    let p = backward_weight_params(label, dy, x, dw, bias, accumulate);
    let bindings = [
        Binding { slot: 1, buffer: dy.buffer },
        Binding { slot: 2, buffer: x.buffer },
        Binding { slot: 3, buffer: dw.buffer },
    ];
    matmul_launch(gpu, Kernel::MatmulBackwardWeight, label, p, &bindings, bias.is_some())
}

/// The backward-weight layout's params: A = dyᵀ read through dy's strides, B = x.
pub fn backward_weight_params(label: &str, dy: View<'_>, x: View<'_>, dw: View<'_>, bias: Option<usize>, accumulate: bool) -> MatmulParams {
    assert_eq!(dy.rows, x.rows, "{label}: dy and x rows");
    assert_eq!((dw.rows, dw.cols), (dy.cols, x.cols), "{label}: dw shape");
    MatmulParams {
        m: u32_of(dy.cols),
        n: u32_of(x.cols),
        k: u32_of(x.rows),
        act: 0,
        a_row: 1,
        a_col: u32_of(dy.cols),
        b_row: u32_of(x.cols),
        b_col: 1,
        a_off: u32_of(dy.offset),
        b_off: u32_of(x.offset),
        c_off: u32_of(dw.offset),
        d_off: 0,
        bias_off: u32_of(bias.unwrap_or(0)),
        flags: if bias.is_some() { FLAG_BIAS } else { 0 } | if accumulate { FLAG_ACCUMULATE } else { 0 },
        slope: 0.0,
        _pad: 0,
    }
}

/// One thread per output and no workgroup memory, in any layout the `*_params` functions
/// describe: the baseline of `wgen bench kernels`. With `epilogue` it adds the bias and applies
/// the activation as the forward does; without, it stores the plain product.
pub fn matmul_naive(gpu: &Gpu, label: &str, mut p: MatmulParams, epilogue: bool, a: &wgpu::Buffer, b: &wgpu::Buffer, c: &wgpu::Buffer) -> Launch {
    if !epilogue {
        p.flags = 0;
        p.act = 0;
    }
    let grid = grid_rows(
        u32_of((p.n as usize).div_ceil(16)),
        u32_of((p.m as usize).div_ceil(16)),
        gpu.limits.max_compute_workgroups_per_dimension,
    );
    let (m, n, k) = (u64::from(p.m), u64::from(p.n), u64::from(p.k));
    let bindings = [Binding { slot: 1, buffer: a }, Binding { slot: 2, buffer: b }, Binding { slot: 3, buffer: c }];
    Launch::new(gpu, Kernel::MatmulNaive, label, &p, &bindings, grid).with_cost(2 * m * n * k, 4 * (m * k + k * n + m * n))
}
