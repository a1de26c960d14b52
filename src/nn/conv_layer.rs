//! Conv2d and ConvTranspose2d layers: each product on the path its `ConvPlan` names, implicit
//! (shaders/conv_subgroup.wgsl) or im2col around the matmul family, and the scratch each pass
//! needs under that plan. ConvTranspose2d(in → out) is the Conv2d(out → in) the other way
//! round: its forward is that Conv2d's input product, its input gradient the output product.

use super::conv::{channel_sum, col2im, im2col, transpose_blocks, ConvShape, Epilogue};
use super::conv_implicit::{conv_input, conv_output, conv_taps, conv_weight, reads_nchw, taps_len, ConvPath, ConvPlan, WeightDy};
use super::Activation;
use crate::gpu::{Gpu, GpuError, Launch, Tensor, View};

/// A pass's scratch views; which are present follows the plan (`ConvBuffers`).
pub struct ConvScratch<'a> {
    pub plan: ConvPlan,
    /// [batch·pixels, patch]: receptive fields or their gradients (im2col paths)
    pub cols: Option<View<'a>>,
    /// [batch·pixels, out_ch]: the channels-last side (im2col paths; dy or x for an implicit
    /// weight gradient)
    pub channels_last: Option<View<'a>>,
    /// The input product's rearranged weights and bias (`conv_taps`)
    pub taps: Option<View<'a>>,
    /// [splits, patch, out_ch]: the weight gradient's partial sums
    pub partials: Option<View<'a>>,
}

impl<'a> ConvScratch<'a> {
    fn cols(&self) -> View<'a> {
        self.cols.expect("the plan's im2col scratch")
    }

    fn channels_last(&self) -> View<'a> {
        self.channels_last.expect("the plan's channels-last scratch")
    }

    fn taps(&self) -> View<'a> {
        self.taps.expect("the plan's taps")
    }
}

/// The scratch tensors of one conv layer's forward or backward pass over `rows` images.
pub struct ConvBuffers {
    pub plan: ConvPlan,
    cols: Option<Tensor>,
    channels_last: Option<Tensor>,
    taps: Option<Tensor>,
    partials: Option<Tensor>,
}

impl ConvBuffers {
    /// The buffers `plan` needs: the im2col paths their receptive fields and channels-last
    /// side (the forward's stay for the backward of an im2col weight gradient), the implicit
    /// input product its taps, a split weight gradient its partials.
    pub fn new(gpu: &Gpu, name: &str, s: &ConvShape, plan: ConvPlan, transposed: bool, backward: bool, rows: usize) -> Result<ConvBuffers, GpuError> {
        let (im2col, input) = (ConvPath::Im2col, plan.input == ConvPath::Implicit);
        let (cols, cl, taps, partials) = match (transposed, backward) {
            (false, false) => (plan.output == im2col, plan.output == im2col, false, false),
            (true, false) => (plan.input == im2col, plan.input == im2col, input, false),
            // Every backward may transpose its output side: for im2col, or for a weight gradient
            // over images that are no whole number of vec4s.
            (false, true) => (plan.input == im2col, true, input, true),
            (true, true) => (plan.weight == im2col || plan.output == im2col, true, false, true),
        };
        let pixels = rows * s.pixels();
        let splits = plan.weight_chunks(pixels);
        let make = |wanted: bool, what: &str, shape: &[usize]| wanted.then(|| Tensor::zeros(gpu, &format!("{name}.{what}"), shape)).transpose();
        Ok(ConvBuffers {
            plan,
            cols: make(cols, "cols", &[pixels, s.patch()])?,
            channels_last: make(cl, "channels_last", &[pixels, s.out_ch])?,
            taps: make(taps, "taps", &[taps_len(s)])?,
            partials: make(partials && splits > 1, "partials", &[splits * s.patch(), s.out_ch])?,
        })
    }

    pub fn scratch(&self) -> ConvScratch<'_> {
        ConvScratch {
            plan: self.plan,
            cols: self.cols.as_ref().map(Tensor::view),
            channels_last: self.channels_last.as_ref().map(Tensor::view),
            taps: self.taps.as_ref().map(Tensor::view),
            partials: self.partials.as_ref().map(Tensor::view),
        }
    }

    /// What a forward pass leaves for an im2col weight gradient, rows `start..start + rows` of
    /// `rows` images: a Conv2d's receptive fields, a ConvTranspose2d's channels-last input.
    pub fn saved(&self, s: &ConvShape, transposed: bool, start: usize, rows: usize) -> Option<View<'_>> {
        let kept = if transposed { &self.channels_last } else { &self.cols };
        kept.as_ref().map(|t| t.view().rows(start * s.pixels(), rows * s.pixels()))
    }
}

/// y [batch, out_len] = act(conv2d(x [batch, in_len], w [out_ch, patch]) + bias).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, w: View<'_>, bias: Option<usize>, scratch: &ConvScratch<'_>, y: View<'_>, act: Activation,
) -> Vec<Launch> {
    let epilogue = Epilogue::Activate { weights: w.buffer, bias, act };
    match scratch.plan.output {
        ConvPath::Implicit => vec![conv_output(gpu, label, shape, x, w, y, epilogue)],
        ConvPath::Im2col => {
            let (cols, cl) = (scratch.cols(), scratch.channels_last());
            vec![
                im2col(gpu, label, shape, x, cols),
                super::matmul_forward(gpu, label, cols, w, bias, cl, act),
                transpose_blocks(gpu, label, x.rows, shape.pixels(), shape.out_ch, cl, y, None),
            ]
        }
    }
}

/// The gradients of a Conv2d from dy [batch, out_len] (at its pre-activation) and its input x:
/// with `weights`, dw [out_ch, patch] and the bias gradient at element `bias` of dw's buffer;
/// with `dx`, the gradient at the input, times act'(prev) when the previous layer's output and
/// activation are given. `saved` is the forward's receptive fields (an im2col weight gradient).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    gpu: &Gpu, label: &str, shape: &ConvShape, dy: View<'_>, w: View<'_>, x: View<'_>, saved: Option<View<'_>>, scratch: &ConvScratch<'_>,
    weights: Option<(View<'_>, Option<usize>)>, dx: Option<(View<'_>, Option<(View<'_>, Activation)>)>,
) -> Vec<Launch> {
    let plan = scratch.plan;
    // dy channels-last, for the im2col products and for an implicit weight gradient that
    // cannot read dy as it is.
    let nchw_weight = plan.weight == ConvPath::Implicit && reads_nchw(shape, &dy);
    let needs_cl = (weights.is_some() && !nchw_weight) || (dx.is_some() && plan.input == ConvPath::Im2col);
    let dy_cl = scratch.channels_last();
    let mut launches = Vec::new();
    if needs_cl {
        launches.push(transpose_blocks(gpu, label, dy.rows, shape.out_ch, shape.pixels(), dy, dy_cl, None));
    }
    if let Some((dw, bias)) = weights {
        match plan.weight {
            ConvPath::Implicit => {
                let from = if nchw_weight { WeightDy::Nchw(dy) } else { WeightDy::ChannelsLast(dy_cl) };
                launches.extend(conv_weight(gpu, label, shape, x, from, dw, plan.splits, scratch.partials));
                launches.extend(bias.map(|b| channel_sum(gpu, label, shape.out_ch, shape.pixels(), dy, dw.buffer, b, false)));
            }
            ConvPath::Im2col => {
                let cols = saved.expect("an im2col weight gradient reads the forward's receptive fields");
                if plan.splits > 1 {
                    launches.extend(super::matmul_backward_weight_split(gpu, label, dy_cl, cols, dw, plan.splits, scratch.partials));
                    launches.extend(bias.map(|b| channel_sum(gpu, label, shape.out_ch, shape.pixels(), dy, dw.buffer, b, false)));
                } else {
                    launches.push(super::matmul_backward_weight(gpu, label, dy_cl, cols, dw, bias, false));
                }
            }
        }
    }
    if let Some((dx, prev)) = dx {
        let epilogue = prev.map_or(Epilogue::None, |(prev, act)| Epilogue::Grad { prev, act });
        match plan.input {
            ConvPath::Implicit => {
                launches.push(conv_taps(gpu, label, shape, w, None, scratch.taps()));
                launches.push(conv_input(gpu, label, shape, dy, scratch.taps(), dx, epilogue));
            }
            ConvPath::Im2col => {
                launches.push(super::matmul_backward_input(gpu, label, dy_cl, w, scratch.cols(), None));
                launches.push(col2im(gpu, label, shape, scratch.cols(), dx, epilogue));
            }
        }
    }
    launches
}

/// y [batch, in_len] = act(conv_transpose2d(x [batch, out_len], w) + bias), `shape` being the
/// Conv2d this layer transposes.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_forward(
    gpu: &Gpu, label: &str, shape: &ConvShape, x: View<'_>, w: View<'_>, bias: Option<usize>, scratch: &ConvScratch<'_>, y: View<'_>, act: Activation,
) -> Vec<Launch> {
    let epilogue = Epilogue::Activate { weights: w.buffer, bias, act };
    match scratch.plan.input {
        ConvPath::Implicit => {
            vec![conv_taps(gpu, label, shape, w, bias, scratch.taps()), conv_input(gpu, label, shape, x, scratch.taps(), y, epilogue)]
        }
        ConvPath::Im2col => {
            let (cols, x_cl) = (scratch.cols(), scratch.channels_last());
            vec![
                transpose_blocks(gpu, label, x.rows, shape.out_ch, shape.pixels(), x, x_cl, None),
                super::matmul_backward_input(gpu, label, x_cl, w, cols, None),
                col2im(gpu, label, shape, cols, y, epilogue),
            ]
        }
    }
}

/// The gradients of a ConvTranspose2d from dy [batch, in_len] (at its pre-activation) and its
/// input x [batch, out_len]: with `weights`, dw and the bias gradient (a per-channel sum of dy)
/// at element `bias` of dw's buffer; with `dx`, the gradient at the input times act'(prev).
/// `saved` is the forward's channels-last input (an im2col weight gradient).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_backward(
    gpu: &Gpu, label: &str, shape: &ConvShape, dy: View<'_>, w: View<'_>, x: View<'_>, saved: Option<View<'_>>, scratch: &ConvScratch<'_>,
    weights: Option<(View<'_>, Option<usize>)>, dx: Option<(View<'_>, Option<(View<'_>, Activation)>)>,
) -> Vec<Launch> {
    let (plan, batch) = (scratch.plan, dy.rows);
    let mut launches = Vec::new();
    let mut cols = None;
    if let Some((dw, bias)) = weights {
        match plan.weight {
            ConvPath::Implicit => {
                // The Conv2d's weight gradient with this layer's input as its output side.
                let from = if reads_nchw(shape, &x) {
                    WeightDy::Nchw(x)
                } else {
                    let x_cl = scratch.channels_last();
                    launches.push(transpose_blocks(gpu, label, batch, shape.out_ch, shape.pixels(), x, x_cl, None));
                    WeightDy::ChannelsLast(x_cl)
                };
                launches.extend(conv_weight(gpu, label, shape, dy, from, dw, plan.splits, scratch.partials));
            }
            ConvPath::Im2col => {
                let x_cl = saved.expect("an im2col weight gradient reads the forward's channels-last input");
                launches.push(im2col(gpu, label, shape, dy, scratch.cols()));
                cols = scratch.cols;
                launches.extend(super::matmul_backward_weight_split(gpu, label, x_cl, scratch.cols(), dw, plan.splits, scratch.partials));
            }
        }
        launches.extend(bias.map(|b| channel_sum(gpu, label, shape.in_ch, shape.in_h * shape.in_w, dy, dw.buffer, b, false)));
    }
    if let Some((dx, prev)) = dx {
        match plan.output {
            ConvPath::Implicit => {
                let epilogue = prev.map_or(Epilogue::None, |(prev, act)| Epilogue::Grad { prev, act });
                launches.push(conv_output(gpu, label, shape, dy, w, dx, epilogue));
            }
            ConvPath::Im2col => {
                if cols.is_none() {
                    launches.push(im2col(gpu, label, shape, dy, scratch.cols()));
                }
                let cl = scratch.channels_last();
                launches.push(super::matmul_forward(gpu, label, scratch.cols(), w, None, cl, Activation::Identity));
                launches.push(transpose_blocks(gpu, label, batch, shape.pixels(), shape.out_ch, cl, dx, prev));
            }
        }
    }
    launches
}
