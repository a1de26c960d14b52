use super::{activate, activate_grad_from_output};
use crate::nn::Activation;

/// y [n, out] = act(x [n, in] · wᵀ + b), w [out, in] as torch.nn.Linear stores it.
pub fn matmul_forward(x: &[f64], w: &[f64], b: Option<&[f64]>, n: usize, inp: usize, out: usize, act: Activation) -> Vec<f64> {
    let mut y = vec![0.0; n * out];
    for r in 0..n {
        for o in 0..out {
            let mut acc = b.map_or(0.0, |b| b[o]);
            for k in 0..inp {
                acc += x[r * inp + k] * w[o * inp + k];
            }
            y[r * out + o] = activate(acc, act);
        }
    }
    y
}

/// dx [n, in] = (dy [n, out] · w) ⊙ act'(d), where d [n, in] is the previous layer's output
/// and act its activation (Identity when the gradient is wanted as is).
pub fn matmul_backward_input(dy: &[f64], w: &[f64], d: Option<&[f64]>, n: usize, inp: usize, out: usize, act: Activation) -> Vec<f64> {
    let mut dx = vec![0.0; n * inp];
    for r in 0..n {
        for k in 0..inp {
            let mut acc = 0.0;
            for o in 0..out {
                acc += dy[r * out + o] * w[o * inp + k];
            }
            let g = d.map_or(1.0, |d| activate_grad_from_output(d[r * inp + k], act));
            dx[r * inp + k] = acc * g;
        }
    }
    dx
}

/// dw [out, in] = dyᵀ · x and db [out] = Σ_rows dy, added to what dw and db hold when
/// `accumulate`, else replacing it.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_weight(dy: &[f64], x: &[f64], n: usize, inp: usize, out: usize, dw: &mut [f64], db: Option<&mut [f64]>, accumulate: bool) {
    for o in 0..out {
        for k in 0..inp {
            let mut acc = 0.0;
            for r in 0..n {
                acc += dy[r * out + o] * x[r * inp + k];
            }
            let at = o * inp + k;
            dw[at] = if accumulate { dw[at] + acc } else { acc };
        }
    }
    if let Some(db) = db {
        for o in 0..out {
            let acc: f64 = (0..n).map(|r| dy[r * out + o]).sum();
            db[o] = if accumulate { db[o] + acc } else { acc };
        }
    }
}
