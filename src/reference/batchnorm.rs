use super::{activate, activate_grad_from_output};
use crate::nn::Activation;

/// What the training forward pass leaves for the backward pass, per column.
#[derive(Clone)]
pub struct BatchnormSaved {
    pub mean: Vec<f64>,
    pub invstd: Vec<f64>,
}

/// y = act(gamma (x - mean) invstd + beta) with batch statistics; updates running_mean and
/// running_var (unbiased) with `momentum`, as torch.nn.BatchNorm1d in training mode.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_train(
    x: &[f64], gamma: &[f64], beta: &[f64], rows: usize, cols: usize, eps: f64, momentum: f64,
    act: Activation, running_mean: &mut [f64], running_var: &mut [f64],
) -> (Vec<f64>, BatchnormSaved) {
    let n = rows as f64;
    let mut y = vec![0.0; rows * cols];
    let mut saved = BatchnormSaved { mean: vec![0.0; cols], invstd: vec![0.0; cols] };
    for c in 0..cols {
        let mean = (0..rows).map(|r| x[r * cols + c]).sum::<f64>() / n;
        let var = (0..rows).map(|r| (x[r * cols + c] - mean).powi(2)).sum::<f64>() / n;
        let invstd = 1.0 / (var + eps).sqrt();
        for r in 0..rows {
            y[r * cols + c] = activate(gamma[c] * (x[r * cols + c] - mean) * invstd + beta[c], act);
        }
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var * n / (n - 1.0).max(1.0);
        saved.mean[c] = mean;
        saved.invstd[c] = invstd;
    }
    (y, saved)
}

#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_eval(
    x: &[f64], gamma: &[f64], beta: &[f64], rows: usize, cols: usize, eps: f64, act: Activation,
    running_mean: &[f64], running_var: &[f64],
) -> Vec<f64> {
    let mut y = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let xhat = (x[r * cols + c] - running_mean[c]) / (running_var[c] + eps).sqrt();
            y[r * cols + c] = activate(gamma[c] * xhat + beta[c], act);
        }
    }
    y
}

/// Returns (dx, dgamma, dbeta) from dy, the gradient of the activated output y.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    dy: &[f64], y: &[f64], x: &[f64], gamma: &[f64], saved: &BatchnormSaved, rows: usize, cols: usize, act: Activation,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = rows as f64;
    let mut dx = vec![0.0; rows * cols];
    let mut dgamma = vec![0.0; cols];
    let mut dbeta = vec![0.0; cols];
    for c in 0..cols {
        let (mean, invstd) = (saved.mean[c], saved.invstd[c]);
        let g = |r: usize| dy[r * cols + c] * activate_grad_from_output(y[r * cols + c], act);
        let xhat = |r: usize| (x[r * cols + c] - mean) * invstd;
        let sum_g: f64 = (0..rows).map(g).sum();
        let sum_g_xhat: f64 = (0..rows).map(|r| g(r) * xhat(r)).sum();
        for r in 0..rows {
            dx[r * cols + c] = gamma[c] * invstd / n * (n * g(r) - sum_g - xhat(r) * sum_g_xhat);
        }
        dgamma[c] = sum_g_xhat;
        dbeta[c] = sum_g;
    }
    (dx, dgamma, dbeta)
}
