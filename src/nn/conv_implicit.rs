//! Launchers of shaders/conv_subgroup.wgsl: a convolution's three products as implicit matrix
//! products that gather their operand from the NCHW images while they run, so no receptive
//! field is ever stored; and the plan that says, layer by layer, which products run this way.

use bytemuck::{Pod, Zeroable};

use super::conv::{contiguous, ConvShape, Epilogue};
use super::{grid_for, u32_of};
pub use crate::gpu::{ConvPath, ConvPlan};
use crate::gpu::{grid_rows, Binding, Gpu, Kernel, Launch, MatmulImpl, View};

/// Twin of `ConvGemmParams` in shaders/conv_subgroup.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct ConvGemmParams {
    pub batch: u32,
    pub in_ch: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_ch: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel: u32,
    pub stride: u32,
    pub padding: u32,
    pub src_off: u32,
    pub w_off: u32,
    pub dst_off: u32,
    pub aux_off: u32,
    pub bias_off: u32,
    pub act: u32,
    pub slope: f32,
    pub flags: u32,
    pub taps: u32,
    pub row_blocks: u32,
    pub chunk: u32,
    pub splits: u32,
    pub cl_off: u32,
    pub _pad: u32,
}

const BIAS: u32 = 1;
const GRAD: u32 = 2;
const ACT: u32 = 4;
const W_VEC4: u32 = 8;
const CL_VEC4: u32 = 16;
const ROW4: u32 = 32;
const DY_NCHW: u32 = 64;

impl ConvPath {
    /// The path `gpu`'s conv layers take (some products of a narrow layer may stay on im2col):
    /// implicit where the subgroup family runs, unless `WGEN_CONV=im2col`.
    pub fn on(gpu: &Gpu) -> ConvPath {
        if gpu.matmul == MatmulImpl::Subgroup && gpu.subgroup_matmul && gpu.implicit_conv {
            ConvPath::Implicit
        } else {
            ConvPath::Im2col
        }
    }
}

impl ConvPlan {
    /// The rule where nothing was timed (`chosen`): the implicit products where `gpu` runs the
    /// subgroup family and `WGEN_CONV` is not `im2col` (`Gpu::implicit_conv`), else im2col
    /// (`ConvPlan::im2col`). The input product stays on im2col below 4
    /// input channels: its 32-channel blocks would be nearly all waste, and a thread per
    /// pixel instead ran at a third of im2col's speed on lavapipe (`wgen bench conv`).
    pub fn for_layer(gpu: &Gpu, shape: &ConvShape, batch: usize) -> ConvPlan {
        if ConvPath::on(gpu) == ConvPath::Im2col {
            return ConvPlan::im2col(gpu, shape, batch);
        }
        let input = if shape.in_ch >= 4 { ConvPath::Implicit } else { ConvPath::Im2col };
        let blocks = shape.patch().div_ceil(16) * shape.out_ch.div_ceil(32);
        ConvPlan { output: ConvPath::Implicit, input, weight: ConvPath::Implicit, splits: weight_splits(gpu, blocks, batch * shape.pixels()) }
    }

    /// Every product through im2col and `gpu`'s matmul family, the weight gradient's sum split
    /// where that family is vec4 and the product's rows and columns (out_ch, the patch) are
    /// multiples of 4 (`matmul_backward_weight_split`).
    pub fn im2col(gpu: &Gpu, shape: &ConvShape, batch: usize) -> ConvPlan {
        let vec4 = gpu.matmul == MatmulImpl::Vec4 && shape.out_ch.is_multiple_of(4) && shape.patch().is_multiple_of(4);
        let blocks = shape.patch().div_ceil(32) * shape.out_ch.div_ceil(32);
        ConvPlan { splits: if vec4 { weight_splits(gpu, blocks, batch * shape.pixels()) } else { 1 }, ..ConvPlan::IM2COL }
    }

    /// The chunks the weight gradient's sum over `pixels` (batch·pixels) runs in.
    pub fn weight_chunks(&self, pixels: usize) -> usize {
        match self.weight {
            ConvPath::Implicit => split_chunks(pixels, self.splits).1,
            ConvPath::Im2col => super::linear::k_chunks(pixels, self.splits).1,
        }
    }
}

/// Chunks of the weight gradient's sum over `pixels` (batch·pixels) for a product of `blocks`
/// output blocks: enough workgroups to keep the adapter busy (4 per CPU thread on a CPU
/// adapter, 1,024 on a GPU), none shorter than 256 pixels, none longer than 65,536 (lavapipe
/// stops an invocation after 65,535 loop iterations).
fn weight_splits(gpu: &Gpu, blocks: usize, pixels: usize) -> usize {
    let target = match gpu.info.device_type {
        wgpu::DeviceType::Cpu => 4 * std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => 1024,
    };
    target.div_ceil(blocks).clamp(1, (pixels / 256).max(1)).max(pixels.div_ceil(65_536))
}

/// Pixels per chunk (a multiple of 4) and the number of chunks that takes.
pub fn split_chunks(pixels: usize, splits: usize) -> (usize, usize) {
    let chunk = pixels.div_ceil(splits.max(1)).next_multiple_of(4);
    (chunk, pixels.div_ceil(chunk))
}

/// Taps a side per stride class of the input product.
fn taps(shape: &ConvShape) -> usize {
    shape.kernel.div_ceil(shape.stride)
}

/// Values of the input product's rearranged weights, bias included.
pub fn taps_len(shape: &ConvShape) -> usize {
    let t = taps(shape);
    shape.stride * shape.stride * (shape.out_ch * t * t).next_multiple_of(4) * shape.in_ch.next_multiple_of(4) + shape.in_ch
}

fn params(shape: &ConvShape, batch: usize) -> ConvGemmParams {
    ConvGemmParams {
        batch: u32_of(batch),
        in_ch: u32_of(shape.in_ch),
        in_h: u32_of(shape.in_h),
        in_w: u32_of(shape.in_w),
        out_ch: u32_of(shape.out_ch),
        out_h: u32_of(shape.out_h()),
        out_w: u32_of(shape.out_w()),
        kernel: u32_of(shape.kernel),
        stride: u32_of(shape.stride),
        padding: u32_of(shape.padding),
        taps: u32_of(taps(shape)),
        ..Zeroable::zeroed()
    }
}

/// Sets the epilogue's flags; returns the buffer the aux slot binds (the previous layer's output
/// for act', else `fallback`) and the profile's note.
fn epilogue<'a>(p: &mut ConvGemmParams, epilogue: Epilogue<'a>, out: View<'_>, fallback: &'a wgpu::Buffer) -> (&'a wgpu::Buffer, String) {
    match epilogue {
        Epilogue::None => (fallback, String::new()),
        Epilogue::Activate { bias, act, .. } => {
            p.flags |= ACT | if bias.is_some() { BIAS } else { 0 };
            (p.act, p.slope) = (act.id(), act.slope());
            (fallback, format!(" {act}"))
        }
        Epilogue::Grad { prev, act } => {
            assert_eq!((prev.rows, prev.cols), (out.rows, out.cols), "the activation's shape");
            contiguous("act'", &[prev]);
            (p.flags, p.aux_off, p.act, p.slope) = (p.flags | GRAD, u32_of(prev.offset), act.id(), act.slope());
            (prev.buffer, format!(" ⊙ {act}'"))
        }
    }
}

/// out [batch, out_len] = the Conv2d of `x` [batch, in_len] with `w` [out_ch, patch], then
/// `epilogue` (its bias, if any, in w's buffer).
pub fn conv_output(gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, w: View<'_>, out: View<'_>, epi: Epilogue<'_>) -> Launch {
    let batch = x.rows;
    assert_eq!((x.cols, out.rows, out.cols), (shape.in_len(), batch, shape.out_len()), "{label}: conv output shapes");
    contiguous(label, &[x, w, out]);
    let mut p = ConvGemmParams { src_off: u32_of(x.offset), w_off: u32_of(w.offset), dst_off: u32_of(out.offset), ..params(shape, batch) };
    if shape.patch().is_multiple_of(4) && w.offset.is_multiple_of(4) {
        p.flags |= W_VEC4;
        if shape.kernel == 4 && shape.padding < 4 {
            p.flags |= ROW4;
        }
    }
    if let Epilogue::Activate { bias: Some(b), .. } = epi {
        p.bias_off = u32_of(b);
    }
    let (aux, note) = epilogue(&mut p, epi, out, x.buffer);
    let bindings = [
        Binding { slot: 1, buffer: x.buffer },
        Binding { slot: 2, buffer: w.buffer },
        Binding { slot: 3, buffer: out.buffer },
        Binding { slot: 4, buffer: aux },
        Binding { slot: 6, buffer: x.buffer },
    ];
    let rows = batch * shape.pixels();
    let grid = grid_rows(u32_of(shape.out_ch.div_ceil(32)), u32_of(rows.div_ceil(16)), gpu.limits.max_compute_workgroups_per_dimension);
    let bytes = 4 * (x.rows * x.cols + w.rows * w.cols + out.rows * out.cols) as u64;
    Launch::new(gpu, Kernel::ConvForwardSubgroup, label, &p, &bindings, grid).with_cost(shape.flops(batch), bytes, format!("{shape} ×{batch}{note}"))
}

/// taps = the weights `w` [out_ch, patch] rearranged per stride class for `conv_input`, then
/// the bias at element `bias` of w's buffer if given.
pub fn conv_taps(gpu: &Gpu, label: &str, shape: &ConvShape, w: View<'_>, bias: Option<usize>, taps: View<'_>) -> Launch {
    assert!(taps.rows * taps.cols >= taps_len(shape), "{label}: taps hold {}", taps_len(shape));
    contiguous(label, &[w, taps]);
    let mut p = ConvGemmParams { w_off: u32_of(w.offset), dst_off: u32_of(taps.offset), ..params(shape, 0) };
    if let Some(b) = bias {
        (p.flags, p.bias_off) = (BIAS, u32_of(b));
    }
    let n = taps_len(shape);
    let bindings = [Binding { slot: 1, buffer: w.buffer }, Binding { slot: 3, buffer: taps.buffer }];
    Launch::new(gpu, Kernel::ConvTaps, label, &p, &bindings, grid_for(gpu, n, 256)).with_cost(0, 4 * (n + w.rows * w.cols) as u64, format!("{shape} taps"))
}

/// out [batch, in_len] = the input side of the Conv2d from `dy` [batch, out_len] through
/// `taps` (conv_taps' output), then `epilogue` (its bias from the taps).
pub fn conv_input(gpu: &Gpu, label: &str, shape: &ConvShape, dy: View<'_>, taps: View<'_>, out: View<'_>, epi: Epilogue<'_>) -> Launch {
    let batch = dy.rows;
    assert_eq!((dy.cols, out.rows, out.cols), (shape.out_len(), batch, shape.in_len()), "{label}: conv input shapes");
    assert!(taps.offset == 0 && taps.rows * taps.cols >= taps_len(shape), "{label}: a taps buffer of its own");
    contiguous(label, &[dy, out]);
    let s = shape.stride;
    let class_rows = batch * shape.in_h.div_ceil(s) * shape.in_w.div_ceil(s);
    let row_blocks = class_rows.div_ceil(16);
    let mut p = ConvGemmParams {
        src_off: u32_of(dy.offset),
        dst_off: u32_of(out.offset),
        bias_off: u32_of(taps_len(shape) - shape.in_ch),
        row_blocks: u32_of(row_blocks),
        ..params(shape, batch)
    };
    let (aux, note) = epilogue(&mut p, epi, out, dy.buffer);
    let bindings = [
        Binding { slot: 1, buffer: dy.buffer },
        Binding { slot: 2, buffer: taps.buffer },
        Binding { slot: 3, buffer: out.buffer },
        Binding { slot: 4, buffer: aux },
    ];
    let grid = grid_rows(u32_of(shape.in_ch.div_ceil(32)), u32_of(s * s * row_blocks), gpu.limits.max_compute_workgroups_per_dimension);
    let bytes = 4 * (dy.rows * dy.cols + shape.out_ch * shape.patch() + out.rows * out.cols) as u64;
    Launch::new(gpu, Kernel::ConvBackwardInputSubgroup, label, &p, &bindings, grid).with_cost(shape.flops(batch), bytes, format!("{shape} ×{batch}{note}"))
}

/// The output side's gradient as the weight gradient reads it.
#[derive(Clone, Copy)]
pub enum WeightDy<'a> {
    /// [batch, out_len] as it is, four pixels a vec4: where `reads_nchw` allows.
    Nchw(View<'a>),
    /// [batch·pixels, out_ch]: transposed by the caller.
    ChannelsLast(View<'a>),
}

/// Whether the weight gradient can read `dy` [batch, out_len] as it is: each image's pixels a
/// whole number of vec4s.
pub fn reads_nchw(shape: &ConvShape, dy: &View<'_>) -> bool {
    shape.pixels().is_multiple_of(4) && dy.offset.is_multiple_of(4) && dy.is_contiguous()
}

/// dw [out_ch, patch] = Σ over images and pixels of dy ⊗ x's receptive fields, from `x`
/// [batch, in_len] and `dy`, in `splits` chunks summed by a second dispatch through `partials`
/// [splits, patch, out_ch] when there are two or more.
#[allow(clippy::too_many_arguments)]
pub fn conv_weight(
    gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, dy: WeightDy<'_>, dw: View<'_>, splits: usize, partials: Option<View<'_>>,
) -> Vec<Launch> {
    let batch = x.rows;
    let pixels = batch * shape.pixels();
    let (dy, flags) = match dy {
        WeightDy::Nchw(dy) => {
            assert!(reads_nchw(shape, &dy) && (dy.rows, dy.cols) == (batch, shape.out_len()), "{label}: dy as vec4s of pixels");
            (dy, DY_NCHW)
        }
        WeightDy::ChannelsLast(cl) => {
            assert_eq!((cl.rows, cl.cols), (pixels, shape.out_ch), "{label}: dy channels-last");
            (cl, if shape.out_ch.is_multiple_of(4) && cl.offset.is_multiple_of(4) { CL_VEC4 } else { 0 })
        }
    };
    assert_eq!(x.cols, shape.in_len(), "{label}: conv weight input");
    assert_eq!((dw.rows, dw.cols), (shape.out_ch, shape.patch()), "{label}: dw shape");
    contiguous(label, &[x, dy, dw]);
    let (chunk, splits) = split_chunks(pixels, splits);
    let row_blocks = shape.patch().div_ceil(16);
    let p = ConvGemmParams {
        flags,
        src_off: u32_of(x.offset),
        cl_off: u32_of(dy.offset),
        dst_off: u32_of(dw.offset),
        row_blocks: u32_of(row_blocks),
        chunk: u32_of(chunk),
        splits: u32_of(splits),
        ..params(shape, batch)
    };
    let to = if splits > 1 { partials.expect("split-K needs its partials") } else { dw };
    if splits > 1 {
        assert!(to.offset == 0 && to.rows * to.cols >= splits * shape.patch() * shape.out_ch, "{label}: partials of {splits} splits");
    }
    let bindings = [Binding { slot: 1, buffer: x.buffer }, Binding { slot: 3, buffer: to.buffer }, Binding { slot: 5, buffer: dy.buffer }];
    let grid = grid_rows(u32_of(shape.out_ch.div_ceil(32)), u32_of(splits * row_blocks), gpu.limits.max_compute_workgroups_per_dimension);
    let bytes = 4 * (x.rows * x.cols + dy.rows * dy.cols + splits * dw.rows * dw.cols) as u64;
    let detail = format!("{shape} ×{batch} {splits} split{}", if splits == 1 { "" } else { "s" });
    let mut launches = vec![Launch::new(gpu, Kernel::ConvBackwardWeightSubgroup, label, &p, &bindings, grid).with_cost(shape.flops(batch), bytes, detail)];
    if splits > 1 {
        let n = dw.rows * dw.cols;
        let bindings = [Binding { slot: 1, buffer: to.buffer }, Binding { slot: 3, buffer: dw.buffer }];
        launches.push(
            Launch::new(gpu, Kernel::ConvReduceSplits, label, &p, &bindings, grid_for(gpu, n, 256)).with_cost(
                (splits * n) as u64,
                4 * ((splits + 1) * n) as u64,
                format!("{splits}x{}x{}", shape.out_ch, shape.patch()),
            ),
        );
    }
    launches
}
