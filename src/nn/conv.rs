//! A convolution's geometry and the launchers of shaders/conv.wgsl, the im2col path's data
//! movers: im2col turns a convolution into the forward matmul, col2im (its transpose) the
//! backward-input one. Images are NCHW rows, `[batch, channels·h·w]`, as PyTorch flattens
//! them; those products run channels-last, and `transpose_blocks` moves between the two.

use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of, Activation};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `ConvParams` in shaders/conv.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct ConvParams {
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
    pub dst_off: u32,
    pub aux_off: u32,
    pub act: u32,
    pub slope: f32,
    pub flags: u32,
    pub a: u32,
    pub b: u32,
    pub _pad: [u32; 2],
}

const BIAS: u32 = 1;
const GRAD: u32 = 2;
const ACCUMULATE: u32 = 4;
const ACT: u32 = 8;

/// A Conv2d's geometry: `in_ch × in_h × in_w` images to `out_ch × out_h × out_w`, square
/// kernel, stride and padding as torch.nn.Conv2d takes them. A ConvTranspose2d is described by
/// the Conv2d whose backward-input it is (`ConvShape::transposed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ConvShape {
    pub in_ch: usize,
    pub out_ch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvShape {
    /// torch.nn.Conv2d(in_ch, out_ch, kernel, stride, padding) over `in_h × in_w` images.
    pub fn conv2d(in_ch: usize, out_ch: usize, in_h: usize, in_w: usize, kernel: usize, stride: usize, padding: usize) -> ConvShape {
        assert!(kernel >= 1 && stride >= 1, "kernel and stride are at least 1");
        assert!(in_h + 2 * padding >= kernel && in_w + 2 * padding >= kernel, "the kernel fits the padded image");
        ConvShape { in_ch, out_ch, in_h, in_w, kernel, stride, padding }
    }

    /// torch.nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding) over `in_h × in_w`
    /// images, which it maps to `(in − 1)·stride − 2·padding + kernel`: the Conv2d(out_ch →
    /// in_ch) over that size whose output is `in_h × in_w`. Its weight `[in_ch, out_ch, k, k]`
    /// is that Conv2d's `[out_ch, in_ch, k, k]`.
    pub fn transposed(in_ch: usize, out_ch: usize, in_h: usize, in_w: usize, kernel: usize, stride: usize, padding: usize) -> ConvShape {
        let size = |n: usize| ((n - 1) * stride + kernel).checked_sub(2 * padding).filter(|&s| s > 0).expect("a non-empty output");
        let conv = ConvShape::conv2d(out_ch, in_ch, size(in_h), size(in_w), kernel, stride, padding);
        assert_eq!((conv.out_h(), conv.out_w()), (in_h, in_w), "the transposed geometry inverts exactly");
        conv
    }

    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.padding - self.kernel) / self.stride + 1
    }

    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// One output pixel's receptive field: `in_ch·k·k`, the matmul's inner dimension.
    pub fn patch(&self) -> usize {
        self.in_ch * self.kernel * self.kernel
    }

    /// Values per input image, `in_ch·in_h·in_w`.
    pub fn in_len(&self) -> usize {
        self.in_ch * self.in_h * self.in_w
    }

    /// Values per output image, `out_ch·out_h·out_w`.
    pub fn out_len(&self) -> usize {
        self.out_ch * self.pixels()
    }

    /// Multiply-adds ×2 of the convolution over `batch` images (the same for its two
    /// backward products).
    pub fn flops(&self, batch: usize) -> u64 {
        2 * (batch * self.pixels() * self.patch() * self.out_ch) as u64
    }

    fn params(&self, batch: usize) -> ConvParams {
        ConvParams {
            batch: u32_of(batch),
            in_ch: u32_of(self.in_ch),
            in_h: u32_of(self.in_h),
            in_w: u32_of(self.in_w),
            out_ch: u32_of(self.out_ch),
            out_h: u32_of(self.out_h()),
            out_w: u32_of(self.out_w()),
            kernel: u32_of(self.kernel),
            stride: u32_of(self.stride),
            padding: u32_of(self.padding),
            ..Zeroable::zeroed()
        }
    }
}

impl std::fmt::Display for ConvShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}x{}→{}x{}x{} k{} s{} p{}",
            self.in_ch,
            self.in_h,
            self.in_w,
            self.out_ch,
            self.out_h(),
            self.out_w(),
            self.kernel,
            self.stride,
            self.padding
        )
    }
}

pub(super) fn contiguous(label: &str, views: &[View<'_>]) {
    assert!(views.iter().all(View::is_contiguous), "{label}: conv kernels read and write contiguous views");
}

/// cols [batch·pixels, patch] = the receptive field of every output pixel of `x` [batch, in_len].
pub fn im2col(gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, cols: View<'_>) -> Launch {
    let batch = x.rows;
    assert_eq!(x.cols, shape.in_len(), "{label}: image width");
    assert_eq!((cols.rows, cols.cols), (batch * shape.pixels(), shape.patch()), "{label}: cols shape");
    contiguous(label, &[x, cols]);
    let params = ConvParams { src_off: u32_of(x.offset), dst_off: u32_of(cols.offset), ..shape.params(batch) };
    let n = cols.rows * cols.cols;
    let bindings = [Binding { slot: 1, buffer: x.buffer }, Binding { slot: 2, buffer: cols.buffer }];
    Launch::new(gpu, Kernel::Im2col, label, &params, &bindings, grid_for(gpu, n, 256)).with_cost(
        0,
        4 * (n + batch * shape.in_len()) as u64,
        format!("{shape} ×{batch}"),
    )
}

/// What col2im and the implicit products do after summing.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// The plain sum.
    None,
    /// act(sum + bias[c]), the bias at element `bias` of `weights` when given: a
    /// ConvTranspose2d's output.
    Activate { weights: &'a wgpu::Buffer, bias: Option<usize>, act: Activation },
    /// sum · act'(prev): the gradient at a layer's pre-activation, from its output `prev`.
    Grad { prev: View<'a>, act: Activation },
}

/// x [batch, in_len] = the sum of every cols [batch·pixels, patch] value that im2col would
/// have read from each image position, then `epilogue`.
pub fn col2im(gpu: &Gpu, label: &str, shape: &ConvShape, cols: View<'_>, x: View<'_>, epilogue: Epilogue<'_>) -> Launch {
    let batch = x.rows;
    assert_eq!(x.cols, shape.in_len(), "{label}: image width");
    assert_eq!((cols.rows, cols.cols), (batch * shape.pixels(), shape.patch()), "{label}: cols shape");
    contiguous(label, &[x, cols]);
    let mut params = ConvParams { src_off: u32_of(cols.offset), dst_off: u32_of(x.offset), ..shape.params(batch) };
    // The aux slot is bound whether read or not; any read-only buffer fills it.
    let mut aux = cols.buffer;
    let mut detail = format!("{shape} ×{batch}");
    match epilogue {
        Epilogue::None => {}
        Epilogue::Activate { weights, bias, act } => {
            params.flags = ACT | if bias.is_some() { BIAS } else { 0 };
            (params.aux_off, params.act, params.slope) = (u32_of(bias.unwrap_or(0)), act.id(), act.slope());
            aux = weights;
            detail += &format!(" {act}");
        }
        Epilogue::Grad { prev, act } => {
            assert_eq!((prev.rows, prev.cols), (x.rows, x.cols), "{label}: activation shape");
            contiguous(label, &[prev]);
            (params.flags, params.aux_off, params.act, params.slope) = (GRAD, u32_of(prev.offset), act.id(), act.slope());
            aux = prev.buffer;
            detail += &format!(" ⊙ {act}'");
        }
    }
    let n = x.rows * x.cols;
    let bindings = [Binding { slot: 1, buffer: cols.buffer }, Binding { slot: 2, buffer: x.buffer }, Binding { slot: 3, buffer: aux }];
    Launch::new(gpu, Kernel::Col2im, label, &params, &bindings, grid_for(gpu, n, 256)).with_cost(
        (cols.rows * cols.cols) as u64,
        4 * (n + cols.rows * cols.cols) as u64,
        detail,
    )
}

/// dst [batch, b, a] = src [batch, a, b] transposed block by block (NCHW ↔ channels-last:
/// a = channels, b = pixels, or the other way round); with `grad`, times act'(prev) where prev
/// is laid out as dst.
#[allow(clippy::too_many_arguments)]
pub fn transpose_blocks(
    gpu: &Gpu, label: &str, batch: usize, a: usize, b: usize, src: View<'_>, dst: View<'_>, grad: Option<(View<'_>, Activation)>,
) -> Launch {
    let n = batch * a * b;
    assert_eq!((src.rows * src.cols, dst.rows * dst.cols), (n, n), "{label}: {batch} blocks of {a}x{b}");
    contiguous(label, &[src, dst]);
    let mut params = ConvParams {
        batch: u32_of(batch),
        a: u32_of(a),
        b: u32_of(b),
        src_off: u32_of(src.offset),
        dst_off: u32_of(dst.offset),
        ..Zeroable::zeroed()
    };
    let mut aux = src.buffer;
    let mut detail = format!("{batch}x{a}x{b}");
    if let Some((prev, act)) = grad {
        assert_eq!(prev.rows * prev.cols, n, "{label}: activation shape");
        contiguous(label, &[prev]);
        (params.flags, params.aux_off, params.act, params.slope) = (GRAD, u32_of(prev.offset), act.id(), act.slope());
        aux = prev.buffer;
        detail += &format!(" ⊙ {act}'");
    }
    let bindings = [Binding { slot: 1, buffer: src.buffer }, Binding { slot: 2, buffer: dst.buffer }, Binding { slot: 3, buffer: aux }];
    Launch::new(gpu, Kernel::TransposeBlocks, label, &params, &bindings, grid_for(gpu, n, 256)).with_cost(0, 8 * n as u64, detail)
}

/// dst[dst_off + c] (+)= Σ over images and pixels of src [batch, channels, hw] at channel c.
#[allow(clippy::too_many_arguments)]
pub fn channel_sum(
    gpu: &Gpu, label: &str, channels: usize, hw: usize, src: View<'_>, dst: &wgpu::Buffer, dst_off: usize, accumulate: bool,
) -> Launch {
    assert_eq!(src.cols, channels * hw, "{label}: {channels} channels of {hw}");
    contiguous(label, &[src]);
    let params = ConvParams {
        batch: u32_of(src.rows),
        a: u32_of(channels),
        b: u32_of(hw),
        src_off: u32_of(src.offset),
        dst_off: u32_of(dst_off),
        flags: if accumulate { ACCUMULATE } else { 0 },
        ..Zeroable::zeroed()
    };
    let n = src.rows * src.cols;
    let bindings = [Binding { slot: 1, buffer: src.buffer }, Binding { slot: 2, buffer: dst }];
    Launch::new(gpu, Kernel::ChannelSum, label, &params, &bindings, grid_for(gpu, channels * 256, 256)).with_cost(
        n as u64,
        4 * (n + channels) as u64,
        format!("{}x{channels}x{hw}", src.rows),
    )
}
