//! Launchers of shaders/conv.wgsl, and Conv2d and ConvTranspose2d composed from them and the
//! matmul families: im2col turns a convolution into the forward matmul, col2im (its transpose)
//! the backward-input one. Images are NCHW rows, `[batch, channels·h·w]`, as PyTorch flattens
//! them; the products run channels-last, and `transpose_blocks` moves between the two.

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

fn contiguous(label: &str, views: &[View<'_>]) {
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

/// What col2im does after summing.
#[derive(Clone, Copy)]
pub enum Col2imEpilogue<'a> {
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
pub fn col2im(gpu: &Gpu, label: &str, shape: &ConvShape, cols: View<'_>, x: View<'_>, epilogue: Col2imEpilogue<'_>) -> Launch {
    let batch = x.rows;
    assert_eq!(x.cols, shape.in_len(), "{label}: image width");
    assert_eq!((cols.rows, cols.cols), (batch * shape.pixels(), shape.patch()), "{label}: cols shape");
    contiguous(label, &[x, cols]);
    let mut params = ConvParams { src_off: u32_of(cols.offset), dst_off: u32_of(x.offset), ..shape.params(batch) };
    // The aux slot is bound whether read or not; any read-only buffer fills it.
    let mut aux = cols.buffer;
    let mut detail = format!("{shape} ×{batch}");
    match epilogue {
        Col2imEpilogue::None => {}
        Col2imEpilogue::Activate { weights, bias, act } => {
            params.flags = ACT | if bias.is_some() { BIAS } else { 0 };
            (params.aux_off, params.act, params.slope) = (u32_of(bias.unwrap_or(0)), act.id(), act.slope());
            aux = weights;
            detail += &format!(" {act}");
        }
        Col2imEpilogue::Grad { prev, act } => {
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

/// The scratch a convolution layer's products run in, per batch: `[batch·pixels, patch]` for
/// the receptive fields (or their gradients) and `[batch·pixels, out_ch]` for the channels-last
/// side.
pub struct ConvScratch<'a> {
    pub cols: View<'a>,
    pub channels_last: View<'a>,
}

/// y [batch, out_len] = act(conv2d(x [batch, in_len], w [out_ch, patch]) + bias): im2col, the
/// forward matmul with its bias and activation epilogue, back to NCHW.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, w: View<'_>, bias: Option<usize>, scratch: &ConvScratch<'_>, y: View<'_>, act: Activation,
) -> Vec<Launch> {
    let batch = x.rows;
    vec![
        im2col(gpu, label, shape, x, scratch.cols),
        super::matmul_forward(gpu, label, scratch.cols, w, bias, scratch.channels_last, act),
        transpose_blocks(gpu, label, batch, shape.pixels(), shape.out_ch, scratch.channels_last, y, None),
    ]
}

/// The gradients of a Conv2d from dy [batch, out_len] (at its pre-activation): with
/// `weights`, dw [out_ch, patch] and the bias gradient at element `bias` of dw's buffer, from
/// `cols`, the forward's receptive fields; with `dx`, the gradient at the input, times
/// act'(prev) when the previous layer's output and activation are given. `scratch.cols` takes
/// the input's gradient in receptive-field form, `scratch.channels_last` dy channels-last.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    gpu: &Gpu, label: &str, shape: &ConvShape, dy: View<'_>, w: View<'_>, cols: View<'_>, scratch: &ConvScratch<'_>,
    weights: Option<(View<'_>, Option<usize>)>, dx: Option<(View<'_>, Option<(View<'_>, Activation)>)>,
) -> Vec<Launch> {
    let batch = dy.rows;
    let dy_cl = scratch.channels_last;
    let mut launches = vec![transpose_blocks(gpu, label, batch, shape.out_ch, shape.pixels(), dy, dy_cl, None)];
    if let Some((dw, bias)) = weights {
        launches.push(super::matmul_backward_weight(gpu, label, dy_cl, cols, dw, bias, false));
    }
    if let Some((dx, prev)) = dx {
        launches.push(super::matmul_backward_input(gpu, label, dy_cl, w, scratch.cols, None));
        let epilogue = prev.map_or(Col2imEpilogue::None, |(prev, act)| Col2imEpilogue::Grad { prev, act });
        launches.push(col2im(gpu, label, shape, scratch.cols, dx, epilogue));
    }
    launches
}

/// y [batch, in_len] = act(conv_transpose2d(x [batch, out_len], w) + bias), `shape` being the
/// Conv2d this layer transposes: x channels-last, the backward-input matmul, col2im with the
/// bias and activation.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_forward(
    gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, w: View<'_>, bias: Option<usize>, scratch: &ConvScratch<'_>, y: View<'_>, act: Activation,
) -> Vec<Launch> {
    let batch = x.rows;
    vec![
        transpose_blocks(gpu, label, batch, shape.out_ch, shape.pixels(), x, scratch.channels_last, None),
        super::matmul_backward_input(gpu, label, scratch.channels_last, w, scratch.cols, None),
        col2im(gpu, label, shape, scratch.cols, y, Col2imEpilogue::Activate { weights: w.buffer, bias, act }),
    ]
}

/// The gradients of a ConvTranspose2d from dy [batch, in_len] (at its pre-activation): with
/// `weights`, dw and the bias gradient (a per-channel sum of dy) at element `bias` of dw's
/// buffer, from `x_cl`, the forward's channels-last input; with `dx`, the gradient at the
/// input times act'(prev). `scratch.cols` takes dy's receptive fields, `scratch.channels_last`
/// the input's gradient before it returns to NCHW.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_backward(
    gpu: &Gpu, label: &str, shape: &ConvShape, dy: View<'_>, w: View<'_>, x_cl: View<'_>, scratch: &ConvScratch<'_>,
    weights: Option<(View<'_>, Option<usize>)>, dx: Option<(View<'_>, Option<(View<'_>, Activation)>)>,
) -> Vec<Launch> {
    let batch = dy.rows;
    let mut launches = vec![im2col(gpu, label, shape, dy, scratch.cols)];
    if let Some((dw, bias)) = weights {
        launches.push(super::matmul_backward_weight(gpu, label, x_cl, scratch.cols, dw, None, false));
        if let Some(bias) = bias {
            launches.push(channel_sum(gpu, label, shape.in_ch, shape.in_h * shape.in_w, dy, dw.buffer, bias, false));
        }
    }
    if let Some((dx, prev)) = dx {
        launches.push(super::matmul_forward(gpu, label, scratch.cols, w, None, scratch.channels_last, Activation::Identity));
        launches.push(transpose_blocks(gpu, label, batch, shape.pixels(), shape.out_ch, scratch.channels_last, dx, prev));
    }
    launches
}

/// One conv layer's operands at a batch size, filled with a fixed pattern: what `wgen bench
/// conv` times its forward, dX and dW passes on.
pub struct ConvOperands {
    label: String,
    shape: ConvShape,
    transposed: bool,
    /// [batch, the layer's input], [batch, its output]: NCHW rows
    x: crate::gpu::Tensor,
    y: crate::gpu::Tensor,
    dy: crate::gpu::Tensor,
    dx: crate::gpu::Tensor,
    /// [out_ch·patch] weights, then the bias; the same for their gradients
    weights: crate::gpu::Tensor,
    grads: crate::gpu::Tensor,
    /// The forward's and the backward's scratch: cols [batch·pixels, patch], channels-last
    /// [batch·pixels, out_ch]
    scratch: [crate::gpu::Tensor; 4],
}

impl ConvOperands {
    /// A Conv2d of `shape`, or with `transposed` the ConvTranspose2d that `shape` describes.
    pub fn new(gpu: &Gpu, layer: &str, shape: ConvShape, transposed: bool, batch: usize) -> Result<ConvOperands, crate::gpu::GpuError> {
        let fill = |name: &str, shape: &[usize]| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
            crate::gpu::Tensor::from_slice(gpu, &format!("bench.{layer}.{name}"), shape, &values)
        };
        let (inp, out) = if transposed { (shape.out_len(), shape.in_len()) } else { (shape.in_len(), shape.out_len()) };
        let params = shape.out_ch * shape.patch() + shape.in_ch.max(shape.out_ch);
        let rows = batch * shape.pixels();
        Ok(ConvOperands {
            label: format!("bench.{layer}"),
            shape,
            transposed,
            x: fill("x", &[batch, inp])?,
            y: fill("y", &[batch, out])?,
            dy: fill("dy", &[batch, out])?,
            dx: fill("dx", &[batch, inp])?,
            weights: fill("weights", &[params])?,
            grads: fill("grads", &[params])?,
            scratch: [
                fill("cols", &[rows, shape.patch()])?,
                fill("cl", &[rows, shape.out_ch])?,
                fill("d_cols", &[rows, shape.patch()])?,
                fill("d_cl", &[rows, shape.out_ch])?,
            ],
        })
    }

    /// Multiply-adds ×2 of each pass.
    pub fn flops(&self) -> u64 {
        self.shape.flops(self.x.shape[0])
    }

    /// The forward, dX and dW passes as training runs them (with ReLU before and after), on
    /// `gpu`'s matmul family. The backward passes each transpose or gather dy themselves; in
    /// training dX and dW share that dispatch.
    pub fn passes(&self, gpu: &Gpu) -> [Vec<Launch>; 3] {
        let (s, label, relu) = (&self.shape, &self.label, Activation::Relu);
        let w = View::new(&self.weights.buffer, 0, s.out_ch, s.patch());
        let dw = View::new(&self.grads.buffer, 0, s.out_ch, s.patch());
        let bias = Some(s.out_ch * s.patch());
        let fwd = ConvScratch { cols: self.scratch[0].view(), channels_last: self.scratch[1].view() };
        let bwd = ConvScratch { cols: self.scratch[2].view(), channels_last: self.scratch[3].view() };
        let dx = Some((self.dx.view(), Some((self.x.view(), relu))));
        if self.transposed {
            [
                conv_transpose2d_forward(gpu, label, s, self.x.view(), w, bias, &fwd, self.y.view(), relu),
                conv_transpose2d_backward(gpu, label, s, self.dy.view(), w, fwd.channels_last, &bwd, None, dx),
                conv_transpose2d_backward(gpu, label, s, self.dy.view(), w, fwd.channels_last, &bwd, Some((dw, bias)), None),
            ]
        } else {
            [
                conv2d_forward(gpu, label, s, self.x.view(), w, bias, &fwd, self.y.view(), relu),
                conv2d_backward(gpu, label, s, self.dy.view(), w, fwd.cols, &bwd, None, dx),
                conv2d_backward(gpu, label, s, self.dy.view(), w, fwd.cols, &bwd, Some((dw, bias)), None),
            ]
        }
    }
}
