//! Twins of shaders/conv.wgsl and of the Conv2d / ConvTranspose2d layers nn/conv.rs composes
//! from it. The layer twins are direct loops over the definitions (torch.nn.Conv2d's sum over
//! the receptive field), not im2col: they check the lowering, they do not repeat it.

use super::{activate, activate_grad_from_output};
use crate::nn::{Activation, ConvShape};

/// Image value (n, c, y, x) of a [batch, channels·h·w] buffer, or None off the image.
fn at(h: usize, w: usize, channels: usize, n: usize, c: usize, y: isize, x: isize) -> Option<usize> {
    (y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w).then(|| ((n * channels + c) * h + y as usize) * w + x as usize)
}

/// The input position kernel tap (ky, kx) of output pixel (oy, ox) reads.
fn tap(s: &ConvShape, oy: usize, ox: usize, ky: usize, kx: usize) -> (isize, isize) {
    ((oy * s.stride + ky) as isize - s.padding as isize, (ox * s.stride + kx) as isize - s.padding as isize)
}

/// Every product of the convolution, (n, co, oy, ox) × (ci, ky, kx), as (output index, weight
/// index, the input index it reads, None off the image).
fn each_term(s: &ConvShape, batch: usize, mut f: impl FnMut(usize, usize, Option<usize>)) {
    let k = s.kernel;
    for n in 0..batch {
        for co in 0..s.out_ch {
            for oy in 0..s.out_h() {
                for ox in 0..s.out_w() {
                    let out = ((n * s.out_ch + co) * s.out_h() + oy) * s.out_w() + ox;
                    for ci in 0..s.in_ch {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (y, x) = tap(s, oy, ox, ky, kx);
                                let wi = ((co * s.in_ch + ci) * k + ky) * k + kx;
                                f(out, wi, at(s.in_h, s.in_w, s.in_ch, n, ci, y, x));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dx ⊙ act'(prev) where the previous layer's output is given, dx itself where not.
fn times_act_grad(mut dx: Vec<f64>, prev: Option<&[f64]>, act: Activation) -> Vec<f64> {
    if let Some(prev) = prev {
        dx.iter_mut().zip(prev).for_each(|(d, &p)| *d *= activate_grad_from_output(p, act));
    }
    dx
}

/// y [batch, out_ch·oh·ow] = act(conv2d(x, w [out_ch, in_ch, k, k]) + b).
pub fn conv2d_forward(x: &[f64], w: &[f64], b: Option<&[f64]>, s: &ConvShape, batch: usize, act: Activation) -> Vec<f64> {
    let mut y = vec![0.0; batch * s.out_len()];
    each_term(s, batch, |out, wi, xi| {
        if let Some(xi) = xi {
            y[out] += x[xi] * w[wi];
        }
    });
    let pixels = s.pixels();
    y.iter_mut().enumerate().for_each(|(i, v)| *v = activate(*v + b.map_or(0.0, |b| b[(i / pixels) % s.out_ch]), act));
    y
}

/// dx [batch, in_len] = the gradient at conv2d's input from dy [batch, out_len], times
/// act'(prev) when the previous layer's output is given.
pub fn conv2d_backward_input(dy: &[f64], w: &[f64], prev: Option<&[f64]>, s: &ConvShape, batch: usize, act: Activation) -> Vec<f64> {
    let mut dx = vec![0.0; batch * s.in_len()];
    each_term(s, batch, |out, wi, xi| {
        if let Some(xi) = xi {
            dx[xi] += dy[out] * w[wi];
        }
    });
    times_act_grad(dx, prev, act)
}

/// dw [out_ch, in_ch, k, k] = Σ dy · x over the batch and the output pixels, db [out_ch] = Σ dy.
pub fn conv2d_backward_weight(dy: &[f64], x: &[f64], s: &ConvShape, batch: usize, dw: &mut [f64], db: Option<&mut [f64]>) {
    dw.fill(0.0);
    each_term(s, batch, |out, wi, xi| {
        if let Some(xi) = xi {
            dw[wi] += dy[out] * x[xi];
        }
    });
    if let Some(db) = db {
        db.copy_from_slice(&channel_sum(dy, batch, s.out_ch, s.pixels()));
    }
}

/// ConvTranspose2d, `s` being the Conv2d it transposes: y [batch, in_len] = act(the
/// Conv2d's backward-input of x [batch, out_len] + b [s.in_ch]).
pub fn conv_transpose2d_forward(x: &[f64], w: &[f64], b: Option<&[f64]>, s: &ConvShape, batch: usize, act: Activation) -> Vec<f64> {
    let hw = s.in_h * s.in_w;
    let mut y = conv2d_backward_input(x, w, None, s, batch, Activation::Identity);
    y.iter_mut().enumerate().for_each(|(i, v)| *v = activate(*v + b.map_or(0.0, |b| b[(i / hw) % s.in_ch]), act));
    y
}

/// ConvTranspose2d's input gradient: the Conv2d's forward of dy [batch, in_len], times
/// act'(prev).
pub fn conv_transpose2d_backward_input(dy: &[f64], w: &[f64], prev: Option<&[f64]>, s: &ConvShape, batch: usize, act: Activation) -> Vec<f64> {
    let dx = conv2d_forward(dy, w, None, s, batch, Activation::Identity);
    times_act_grad(dx, prev, act)
}

/// ConvTranspose2d's dw [s.out_ch, s.in_ch, k, k] (PyTorch's [in, out, k, k]) from its input x
/// [batch, out_len] and dy [batch, in_len]; db [s.in_ch] = Σ dy per channel.
pub fn conv_transpose2d_backward_weight(dy: &[f64], x: &[f64], s: &ConvShape, batch: usize, dw: &mut [f64], db: Option<&mut [f64]>) {
    // The Conv2d's weight gradient with the roles of its input and output gradient swapped.
    conv2d_backward_weight(x, dy, s, batch, dw, None);
    if let Some(db) = db {
        db.copy_from_slice(&channel_sum(dy, batch, s.in_ch, s.in_h * s.in_w));
    }
}

/// Every cell of im2col's cols [batch·pixels, patch]: its index and the image value it holds,
/// None off the image.
fn each_cell(s: &ConvShape, batch: usize, mut f: impl FnMut(usize, Option<usize>)) {
    let (k, patch) = (s.kernel, s.patch());
    for n in 0..batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let row = (n * s.out_h() + oy) * s.out_w() + ox;
                for ci in 0..s.in_ch {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (y, xx) = tap(s, oy, ox, ky, kx);
                            f(row * patch + (ci * k + ky) * k + kx, at(s.in_h, s.in_w, s.in_ch, n, ci, y, xx));
                        }
                    }
                }
            }
        }
    }
}

/// cols [batch·pixels, patch]: each output pixel's receptive field, zeros off the image.
pub fn im2col(x: &[f64], s: &ConvShape, batch: usize) -> Vec<f64> {
    let mut cols = vec![0.0; batch * s.pixels() * s.patch()];
    each_cell(s, batch, |c, xi| cols[c] = xi.map_or(0.0, |i| x[i]));
    cols
}

/// im2col's transpose: every cols value added back to the image position it came from.
pub fn col2im(cols: &[f64], s: &ConvShape, batch: usize) -> Vec<f64> {
    let mut x = vec![0.0; batch * s.in_len()];
    each_cell(s, batch, |c, xi| {
        if let Some(i) = xi {
            x[i] += cols[c];
        }
    });
    x
}

/// dst [batch, b, a] = src [batch, a, b] transposed per block.
pub fn transpose_blocks(src: &[f64], batch: usize, a: usize, b: usize) -> Vec<f64> {
    let mut dst = vec![0.0; batch * a * b];
    for n in 0..batch {
        for i in 0..a {
            for j in 0..b {
                dst[n * a * b + j * a + i] = src[n * a * b + i * b + j];
            }
        }
    }
    dst
}

/// [channels]: Σ over images and pixels of src [batch, channels, hw].
pub fn channel_sum(src: &[f64], batch: usize, channels: usize, hw: usize) -> Vec<f64> {
    (0..channels).map(|c| (0..batch).map(|n| src[(n * channels + c) * hw..][..hw].iter().sum::<f64>()).sum()).collect()
}
