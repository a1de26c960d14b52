use bytemuck::{Pod, Zeroable};

use super::{u32_of, Activation};
use crate::gpu::{grid_rows, Binding, Gpu, GpuError, Kernel, Launch, MatmulImpl, Tensor, View};

/// Twin of `MatmulParams` in shaders/common.wgsl.
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
    /// backward_weight_vec4: k per split (0: one split of all k).
    pub k_chunk: u32,
}

const FLAG_BIAS: u32 = 1;
const FLAG_ACCUMULATE: u32 = 2;
/// Subgroup kernels only: A is read as vec4s.
const FLAG_A_VEC4: u32 = 4;
const TILE: usize = 64;

fn fours(values: &[u32]) -> bool {
    values.iter().all(|v| v % 4 == 0)
}

/// The tiled kernel of a layout and its vec4 and subgroup twins.
struct Kernels {
    tiled: Kernel,
    vec4: Kernel,
    subgroup: Kernel,
}

const FORWARD: Kernels = Kernels { tiled: Kernel::MatmulForward, vec4: Kernel::MatmulForwardVec4, subgroup: Kernel::MatmulForwardSubgroup };
const BACKWARD_INPUT: Kernels = Kernels {
    tiled: Kernel::MatmulBackwardInput,
    vec4: Kernel::MatmulBackwardInputVec4,
    subgroup: Kernel::MatmulBackwardInputSubgroup,
};
const BACKWARD_WEIGHT: Kernels = Kernels {
    tiled: Kernel::MatmulBackwardWeight,
    vec4: Kernel::MatmulBackwardWeightVec4,
    subgroup: Kernel::MatmulBackwardWeightSubgroup,
};

/// Whether the vec4 kernel can run `p`: its vectorised extents, strides and offsets must be
/// multiples of 4 (shaders/matmul_vec4.wgsl).
fn vec4_fits(kernels: &Kernels, p: &MatmulParams) -> bool {
    fours(&[p.a_off, p.b_off])
        && match kernels.tiled {
            Kernel::MatmulForward => p.a_col == 1 && p.b_row == 1 && fours(&[p.k, p.a_row, p.b_col]),
            Kernel::MatmulBackwardInput => p.a_col == 1 && p.b_col == 1 && fours(&[p.k, p.n, p.a_row, p.b_row]),
            _ => p.a_row == 1 && p.b_col == 1 && fours(&[p.m, p.n, p.a_col, p.b_row]),
        }
}

/// Whether the subgroup kernel can run `p` (shaders/matmul_subgroup.wgsl): B is read as vec4s
/// along k in the forward and along n in the backward layouts; the forward reads A as vec4s
/// along k; the backward layouts write C (and read D) a vec4 per row; dW does not accumulate.
fn subgroup_fits(kernels: &Kernels, p: &MatmulParams) -> bool {
    fours(&[p.b_off])
        && match kernels.tiled {
            Kernel::MatmulForward => p.a_col == 1 && p.b_row == 1 && fours(&[p.k, p.a_row, p.a_off, p.b_col]),
            Kernel::MatmulBackwardInput => p.b_col == 1 && fours(&[p.n, p.b_row, p.c_off, p.d_off]),
            _ => p.b_col == 1 && p.flags & FLAG_ACCUMULATE == 0 && fours(&[p.n, p.b_row, p.c_off]),
        }
}

/// Whether A's contiguous axis, row stride and offset are multiples of 4, so the subgroup
/// kernels read it as vec4s (FLAG_A_VEC4).
fn subgroup_a_vec4(kernels: &Kernels, p: &MatmulParams) -> bool {
    match kernels.tiled {
        Kernel::MatmulBackwardWeight => p.a_row == 1 && fours(&[p.m, p.a_col, p.a_off]),
        _ => p.a_col == 1 && fours(&[p.k, p.a_row, p.a_off]),
    }
}

/// The kernel `choice` runs `p` with, falling back subgroup → vec4 → tiled where a shape
/// does not fit, and its grid.
fn pick(gpu: &Gpu, choice: MatmulImpl, kernels: &Kernels, p: &MatmulParams, extra_col: bool) -> (Kernel, [u32; 3]) {
    let max = gpu.limits.max_compute_workgroups_per_dimension;
    let (m, n) = (p.m as usize, p.n as usize);
    if choice == MatmulImpl::Subgroup && gpu.subgroup_matmul && subgroup_fits(kernels, p) {
        return (kernels.subgroup, grid_rows(u32_of(n.div_ceil(32)), u32_of(m.div_ceil(16)), max));
    }
    if choice != MatmulImpl::Tiled && vec4_fits(kernels, p) {
        return (kernels.vec4, grid_rows(u32_of(n.div_ceil(32)), u32_of(m.div_ceil(32)), max));
    }
    let cols = n + usize::from(extra_col);
    (kernels.tiled, grid_rows(u32_of(cols.div_ceil(TILE)), u32_of(m.div_ceil(TILE)), max))
}

fn matmul_launch(gpu: &Gpu, choice: MatmulImpl, kernels: &Kernels, label: &str, mut p: MatmulParams, bindings: &[Binding<'_>], extra_col: bool) -> Launch {
    let (kernel, grid) = pick(gpu, choice, kernels, &p, extra_col);
    if kernel == kernels.subgroup && subgroup_a_vec4(kernels, &p) {
        p.flags |= FLAG_A_VEC4;
    }
    let (bytes, detail) = matmul_traffic(kernels.tiled, &p);
    Launch::new(gpu, kernel, label, &p, bindings, grid).with_cost(matmul_flops(&p), bytes, detail)
}

/// 2·m·n·k: the products and sums; epilogues are not counted.
pub fn matmul_flops(p: &MatmulParams) -> u64 {
    2 * u64::from(p.m) * u64::from(p.n) * u64::from(p.k)
}

/// Bytes a matmul must move — A, B and C once each, plus what its epilogue touches — and its
/// shape, `m x k · k x n`.
pub fn matmul_traffic(layout: Kernel, p: &MatmulParams) -> (u64, String) {
    let (m, n, k) = (u64::from(p.m), u64::from(p.n), u64::from(p.k));
    let bias = p.flags & FLAG_BIAS != 0;
    let accumulate = p.flags & FLAG_ACCUMULATE != 0;
    let act = [Activation::Identity, Activation::Relu, Activation::LeakyRelu(p.slope), Activation::Sigmoid, Activation::Tanh]
        .into_iter()
        .find(|a| a.id() == p.act)
        .unwrap_or(Activation::Identity);
    let mut elements = m * k + k * n + m * n;
    let mut detail = format!("{m}x{k}·{k}x{n}");
    match layout {
        Kernel::MatmulForward => {
            elements += if bias { n } else { 0 };
            detail += &format!(" {act}");
        }
        Kernel::MatmulBackwardInput => {
            if p.act != 0 {
                elements += m * n;
                detail += &format!(" ⊙ {act}'");
            }
        }
        _ => {
            let bias_len = if bias { m } else { 0 };
            elements += bias_len + if accumulate { m * n + bias_len } else { 0 };
            if bias {
                detail += " +db";
            }
        }
    }
    (4 * elements, detail)
}

/// y [rows, out] = act(x [rows, in] · wᵀ + b): w is [out, in] in the parameter buffer, the bias
/// (`out` values) at element `bias` of the same buffer.
pub fn matmul_forward(gpu: &Gpu, label: &str, x: View<'_>, w: View<'_>, bias: Option<usize>, y: View<'_>, act: Activation) -> Launch {
    matmul_forward_with(gpu, gpu.matmul, label, x, w, bias, y, act)
}

/// `matmul_forward` with the kernel family chosen by the caller (tests and benchmarks).
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward_with(gpu: &Gpu, choice: MatmulImpl, label: &str, x: View<'_>, w: View<'_>, bias: Option<usize>, y: View<'_>, act: Activation) -> Launch {
    let p = forward_params(label, x, w, bias, y, act);
    let bindings = [
        Binding { slot: 1, buffer: x.buffer },
        Binding { slot: 2, buffer: w.buffer },
        Binding { slot: 3, buffer: y.buffer },
    ];
    matmul_launch(gpu, choice, &FORWARD, label, p, &bindings, false)
}

/// The forward layout's params: A = x, B = wᵀ read through w's strides.
pub fn forward_params(label: &str, x: View<'_>, w: View<'_>, bias: Option<usize>, y: View<'_>, act: Activation) -> MatmulParams {
    assert_eq!(x.cols, w.cols, "{label}: x has {} columns, w expects {}", x.cols, w.cols);
    assert_eq!((y.rows, y.cols), (x.rows, w.rows), "{label}: output shape");
    assert!(y.is_contiguous(), "{label}: the output is written row after row");
    MatmulParams {
        m: u32_of(x.rows),
        n: u32_of(w.rows),
        k: u32_of(x.cols),
        act: act.id(),
        a_row: u32_of(x.stride),
        a_col: 1,
        b_row: 1,
        b_col: u32_of(w.stride),
        a_off: u32_of(x.offset),
        b_off: u32_of(w.offset),
        c_off: u32_of(y.offset),
        d_off: 0,
        bias_off: u32_of(bias.unwrap_or(0)),
        flags: if bias.is_some() { FLAG_BIAS } else { 0 },
        slope: act.slope(),
        k_chunk: 0,
    }
}

/// dx [rows, in] = (dy [rows, out] · w) ⊙ act'(prev), where `prev` is the previous layer's
/// activated output (the layer's input) and `act` that layer's activation.
pub fn matmul_backward_input(gpu: &Gpu, label: &str, dy: View<'_>, w: View<'_>, dx: View<'_>, prev: Option<(View<'_>, Activation)>) -> Launch {
    matmul_backward_input_with(gpu, gpu.matmul, label, dy, w, dx, prev)
}

/// `matmul_backward_input` with the kernel family chosen by the caller.
pub fn matmul_backward_input_with(
    gpu: &Gpu, choice: MatmulImpl, label: &str, dy: View<'_>, w: View<'_>, dx: View<'_>, prev: Option<(View<'_>, Activation)>,
) -> Launch {
    // Never read with the identity; any read-only buffer fills the slot.
    let d = prev.map_or(dy.buffer, |(d, _)| d.buffer);
    let p = backward_input_params(label, dy, w, dx, prev);
    let bindings = [
        Binding { slot: 1, buffer: dy.buffer },
        Binding { slot: 2, buffer: w.buffer },
        Binding { slot: 3, buffer: dx.buffer },
        Binding { slot: 4, buffer: d },
    ];
    matmul_launch(gpu, choice, &BACKWARD_INPUT, label, p, &bindings, false)
}

/// The backward-input layout's params: A = dy, B = w as stored.
pub fn backward_input_params(label: &str, dy: View<'_>, w: View<'_>, dx: View<'_>, prev: Option<(View<'_>, Activation)>) -> MatmulParams {
    assert_eq!(dy.cols, w.rows, "{label}: dy has {} columns, w has {} rows", dy.cols, w.rows);
    assert_eq!((dx.rows, dx.cols), (dy.rows, w.cols), "{label}: dx shape");
    assert!(dx.is_contiguous(), "{label}: dx is written row after row");
    let (d_off, act) = match prev {
        Some((d, act)) => {
            assert_eq!((d.rows, d.cols), (dx.rows, dx.cols), "{label}: activation shape");
            assert!(d.is_contiguous(), "{label}: the activation is read row after row");
            (d.offset, act)
        }
        None => (0, Activation::Identity),
    };
    MatmulParams {
        m: u32_of(dy.rows),
        n: u32_of(w.cols),
        k: u32_of(w.rows),
        act: act.id(),
        a_row: u32_of(dy.stride),
        a_col: 1,
        b_row: u32_of(w.stride),
        b_col: 1,
        a_off: u32_of(dy.offset),
        b_off: u32_of(w.offset),
        c_off: u32_of(dx.offset),
        d_off: u32_of(d_off),
        bias_off: 0,
        flags: 0,
        slope: act.slope(),
        k_chunk: 0,
    }
}

/// dw [out, in] (+)= dyᵀ · x and, with `bias`, db (+)= Σ_rows dy at element `bias` of dw's
/// buffer, in the same dispatch.
pub fn matmul_backward_weight(gpu: &Gpu, label: &str, dy: View<'_>, x: View<'_>, dw: View<'_>, bias: Option<usize>, accumulate: bool) -> Launch {
    matmul_backward_weight_with(gpu, gpu.matmul, label, dy, x, dw, bias, accumulate)
}

/// `matmul_backward_weight` with the kernel family chosen by the caller.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_weight_with(
    gpu: &Gpu, choice: MatmulImpl, label: &str, dy: View<'_>, x: View<'_>, dw: View<'_>, bias: Option<usize>, accumulate: bool,
) -> Launch {
    let p = backward_weight_params(label, dy, x, dw, bias, accumulate);
    let bindings = [
        Binding { slot: 1, buffer: dy.buffer },
        Binding { slot: 2, buffer: x.buffer },
        Binding { slot: 3, buffer: dw.buffer },
    ];
    matmul_launch(gpu, choice, &BACKWARD_WEIGHT, label, p, &bindings, bias.is_some())
}

/// dw [m, n] = dyᵀ · x with k (dy's and x's rows) split into `splits` chunks: each chunk's
/// product in its slice of `partials` [splits, m, n], then their sum in split order, so the
/// result repeats bit for bit. Many workgroups where the plain kernel has few output blocks and
/// a long k: a convolution's weight gradient. Only the vec4 family splits; where the family
/// is another or the shape does not fit vec4s (`vec4_fits`), it runs unsplit into dw.
pub fn matmul_backward_weight_split(gpu: &Gpu, label: &str, dy: View<'_>, x: View<'_>, dw: View<'_>, splits: usize, partials: Option<View<'_>>) -> Vec<Launch> {
    let mut p = backward_weight_params(label, dy, x, dw, None, false);
    let (chunk, count) = k_chunks(p.k as usize, splits);
    if count < 2 || gpu.matmul != MatmulImpl::Vec4 || !vec4_fits(&BACKWARD_WEIGHT, &p) {
        return vec![matmul_backward_weight(gpu, label, dy, x, dw, None, false)];
    }
    let partials = partials.expect("split-K needs its partials");
    let (m, n) = (p.m as usize, p.n as usize);
    assert!(partials.offset.is_multiple_of(4) && partials.rows * partials.cols >= count * m * n, "{label}: partials of {count} splits");
    p.k_chunk = u32_of(chunk);
    p.c_off = u32_of(partials.offset);
    let max = gpu.limits.max_compute_workgroups_per_dimension;
    let grid = grid_rows(u32_of(n.div_ceil(32)), u32_of(count * m.div_ceil(32)), max);
    let (bytes, detail) = matmul_traffic(Kernel::MatmulBackwardWeight, &p);
    let bindings = [Binding { slot: 1, buffer: dy.buffer }, Binding { slot: 2, buffer: x.buffer }, Binding { slot: 3, buffer: partials.buffer }];
    let product = Launch::new(gpu, Kernel::MatmulBackwardWeightVec4, label, &p, &bindings, grid)
        .with_cost(matmul_flops(&p), bytes + 4 * ((count - 1) * m * n) as u64, format!("{detail} {count} splits"));
    let reduce = MatmulParams { a_off: u32_of(partials.offset), c_off: u32_of(dw.offset), ..p };
    let bindings = [Binding { slot: 1, buffer: partials.buffer }, Binding { slot: 3, buffer: dw.buffer }];
    let sum = Launch::new(gpu, Kernel::MatmulReduceSplitsVec4, label, &reduce, &bindings, super::grid_for(gpu, m * n / 4, 64))
        .with_cost((count * m * n) as u64, 4 * ((count + 1) * m * n) as u64, format!("{count}x{m}x{n}"));
    vec![product, sum]
}

/// `k` in at most `splits` chunks, all of one length but the last: (that length, how many).
pub(super) fn k_chunks(k: usize, splits: usize) -> (usize, usize) {
    let chunk = k.div_ceil(splits.max(1)).max(1);
    (chunk, k.div_ceil(chunk))
}

/// The backward-weight layout's params: A = dyᵀ read through dy's strides, B = x.
pub fn backward_weight_params(label: &str, dy: View<'_>, x: View<'_>, dw: View<'_>, bias: Option<usize>, accumulate: bool) -> MatmulParams {
    assert_eq!(dy.rows, x.rows, "{label}: dy and x rows");
    assert_eq!((dw.rows, dw.cols), (dy.cols, x.cols), "{label}: dw shape");
    assert!(dw.is_contiguous(), "{label}: dw is written row after row");
    MatmulParams {
        m: u32_of(dy.cols),
        n: u32_of(x.cols),
        k: u32_of(x.rows),
        act: 0,
        a_row: 1,
        a_col: u32_of(dy.stride),
        b_row: u32_of(x.stride),
        b_col: 1,
        a_off: u32_of(dy.offset),
        b_off: u32_of(x.offset),
        c_off: u32_of(dw.offset),
        d_off: 0,
        bias_off: u32_of(bias.unwrap_or(0)),
        flags: if bias.is_some() { FLAG_BIAS } else { 0 } | if accumulate { FLAG_ACCUMULATE } else { 0 },
        slope: 0.0,
        k_chunk: 0,
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
    let bindings = [Binding { slot: 1, buffer: a }, Binding { slot: 2, buffer: b }, Binding { slot: 3, buffer: c }];
    let (m, n, k) = (u64::from(p.m), u64::from(p.n), u64::from(p.k));
    Launch::new(gpu, Kernel::MatmulNaive, label, &p, &bindings, grid).with_cost(matmul_flops(&p), 4 * (m * k + k * n + m * n), format!("{m}x{k}·{k}x{n}"))
}

/// One Linear layer's operands at a batch size, filled with a fixed pattern: what
/// `wgen bench kernels` and the matmul tuner time its three matmuls on.
pub struct LayerOperands {
    label: String,
    batch: usize,
    inp: usize,
    out: usize,
    /// [batch, inp]
    x: Tensor,
    /// [out, inp] weights, then the bias
    weights: Tensor,
    /// [batch, out]
    y: Tensor,
    /// [batch, out]
    dy: Tensor,
    /// [batch, inp]
    dx: Tensor,
    /// [out, inp] gradient, then the bias gradient
    grads: Tensor,
}

const BENCH_ACT: Activation = Activation::LeakyRelu(0.2);

impl LayerOperands {
    pub fn new(gpu: &Gpu, layer: &str, batch: usize, inp: usize, out: usize) -> Result<LayerOperands, GpuError> {
        let fill = |name: &str, shape: &[usize]| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
            Tensor::from_slice(gpu, &format!("bench.{layer}.{name}"), shape, &values)
        };
        Ok(LayerOperands {
            label: format!("bench.{layer}"),
            batch,
            inp,
            out,
            x: fill("x", &[batch, inp])?,
            weights: fill("weights", &[out * inp + out])?,
            y: fill("y", &[batch, out])?,
            dy: fill("dy", &[batch, out])?,
            dx: fill("dx", &[batch, inp])?,
            grads: fill("grads", &[out * inp + out])?,
        })
    }

    fn w(&self) -> View<'_> {
        View::new(&self.weights.buffer, 0, self.out, self.inp)
    }

    fn dw(&self) -> View<'_> {
        View::new(&self.grads.buffer, 0, self.out, self.inp)
    }

    /// The forward, dX and dW launches `family` runs (after its fallbacks), with their epilogues.
    pub fn launches(&self, gpu: &Gpu, family: MatmulImpl) -> [Launch; 3] {
        let (label, bias) = (&self.label, Some(self.out * self.inp));
        [
            matmul_forward_with(gpu, family, label, self.x.view(), self.w(), bias, self.y.view(), BENCH_ACT),
            matmul_backward_input_with(gpu, family, label, self.dy.view(), self.w(), self.dx.view(), Some((self.x.view(), BENCH_ACT))),
            matmul_backward_weight_with(gpu, family, label, self.dy.view(), self.x.view(), self.dw(), bias, false),
        ]
    }

    /// The naive kernel in the same three layouts (the forward with its epilogue).
    pub fn naive(&self, gpu: &Gpu) -> [Launch; 3] {
        let (label, bias) = (&self.label, Some(self.out * self.inp));
        [
            matmul_naive(gpu, label, forward_params(label, self.x.view(), self.w(), bias, self.y.view(), BENCH_ACT), true, &self.x.buffer, &self.weights.buffer, &self.y.buffer),
            matmul_naive(gpu, label, backward_input_params(label, self.dy.view(), self.w(), self.dx.view(), None), false, &self.dy.buffer, &self.weights.buffer, &self.dx.buffer),
            matmul_naive(gpu, label, backward_weight_params(label, self.dy.view(), self.x.view(), self.dw(), None, false), false, &self.dy.buffer, &self.x.buffer, &self.grads.buffer),
        ]
    }

    /// `m x k · k x n` of the forward, dX and dW.
    pub fn shapes(&self) -> [String; 3] {
        let (b, i, o) = (self.batch, self.inp, self.out);
        [format!("{b}x{i}·{i}x{o}"), format!("{b}x{o}·{o}x{i}"), format!("{o}x{b}·{b}x{i}")]
    }
}
