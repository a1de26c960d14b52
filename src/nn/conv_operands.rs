//! One conv layer's operands at a batch size, filled with a fixed pattern: what `wgen bench
//! conv` times each product on, under each plan.

use super::conv::ConvShape;
use super::conv_implicit::ConvPlan;
use super::conv_layer::{conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward, ConvBuffers};
use super::Activation;
use crate::gpu::{Gpu, GpuError, Launch, Tensor, View};

pub struct ConvOperands {
    label: String,
    shape: ConvShape,
    transposed: bool,
    /// [batch, the layer's input], [batch, its output]: NCHW rows
    x: Tensor,
    y: Tensor,
    dy: Tensor,
    dx: Tensor,
    /// [out_ch·patch] weights, then the bias; the same for their gradients
    weights: Tensor,
    grads: Tensor,
}

/// The forward, dX and dW passes of one plan, with the scratch they run in.
pub struct ConvPasses {
    pub launches: [Vec<Launch>; 3],
    _scratch: [ConvBuffers; 2],
}

impl ConvOperands {
    /// A Conv2d of `shape`, or with `transposed` the ConvTranspose2d that `shape` describes.
    pub fn new(gpu: &Gpu, layer: &str, shape: ConvShape, transposed: bool, batch: usize) -> Result<ConvOperands, GpuError> {
        let fill = |name: &str, shape: &[usize]| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5).collect();
            Tensor::from_slice(gpu, &format!("bench.{layer}.{name}"), shape, &values)
        };
        let (inp, out) = if transposed { (shape.out_len(), shape.in_len()) } else { (shape.in_len(), shape.out_len()) };
        let params = shape.out_ch * shape.patch() + shape.in_ch.max(shape.out_ch);
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
        })
    }

    pub fn batch(&self) -> usize {
        self.x.shape[0]
    }

    /// Multiply-adds ×2 of each pass.
    pub fn flops(&self) -> u64 {
        self.shape.flops(self.batch())
    }

    /// The plan training would run this layer with on `gpu`.
    pub fn plan(&self, gpu: &Gpu) -> Result<ConvPlan, GpuError> {
        ConvPlan::chosen(gpu, &self.shape, self.batch())
    }

    /// The forward, dX and dW passes as training runs them under `plan` (with ReLU before and
    /// after), on `gpu`'s matmul family. The backward passes each transpose dy themselves; in
    /// training dX and dW share that dispatch.
    pub fn passes(&self, gpu: &Gpu, plan: ConvPlan) -> Result<ConvPasses, GpuError> {
        let (s, label, relu, batch) = (&self.shape, &self.label, Activation::Relu, self.batch());
        let w = View::new(&self.weights.buffer, 0, s.out_ch, s.patch());
        let dw = View::new(&self.grads.buffer, 0, s.out_ch, s.patch());
        let bias = Some(s.out_ch * s.patch());
        let fwd = ConvBuffers::new(gpu, label, s, plan, self.transposed, false, batch)?;
        let bwd = ConvBuffers::new(gpu, label, s, plan, self.transposed, true, batch)?;
        let (f, b) = (fwd.scratch(), bwd.scratch());
        let saved = fwd.saved(s, self.transposed, 0, batch);
        let dx = Some((self.dx.view(), Some((self.x.view(), relu))));
        let (x, dy) = (self.x.view(), self.dy.view());
        let launches = if self.transposed {
            [
                conv_transpose2d_forward(gpu, label, s, x, w, bias, &f, self.y.view(), relu),
                conv_transpose2d_backward(gpu, label, s, dy, w, x, saved, &b, None, dx),
                conv_transpose2d_backward(gpu, label, s, dy, w, x, saved, &b, Some((dw, bias)), None),
            ]
        } else {
            [
                conv2d_forward(gpu, label, s, x, w, bias, &f, self.y.view(), relu),
                conv2d_backward(gpu, label, s, dy, w, x, saved, &b, None, dx),
                conv2d_backward(gpu, label, s, dy, w, x, saved, &b, Some((dw, bias)), None),
            ]
        };
        Ok(ConvPasses { launches, _scratch: [fwd, bwd] })
    }
}
