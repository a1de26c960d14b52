use super::sigmoid;

/// max(x, 0) - x t + ln(1 + e^{-|x|}).
pub fn bce_with_logit(x: f64, t: f64) -> f64 {
    x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
}

/// Returns (grad [rows, cols] = (σ(x) - t) · grad_scale, row_loss [rows] = Σ_cols bce).
pub fn bce_logits(logits: &[f64], targets: &[f64], rows: usize, cols: usize, grad_scale: f64) -> (Vec<f64>, Vec<f64>) {
    let mut grad = vec![0.0; rows * cols];
    let mut row_loss = vec![0.0; rows];
    for (r, loss) in row_loss.iter_mut().enumerate() {
        for c in 0..cols {
            let at = r * cols + c;
            *loss += bce_with_logit(logits[at], targets[at]);
            grad[at] = (sigmoid(logits[at]) - targets[at]) * grad_scale;
        }
    }
    (grad, row_loss)
}

pub struct GanLossOut {
    pub d_grad: Vec<f64>,
    pub g_grad: Vec<f64>,
    /// d_loss, g_loss, mean D(x), mean D(G(z))
    pub metrics: [f64; 4],
}

/// logits [2B]: real rows then fake rows. See shaders/gan_loss.wgsl for the definitions.
pub fn gan_loss(logits: &[f64], batch: usize, real_label: f64, fake_label: f64) -> GanLossOut {
    let n = batch as f64;
    let (real, fake) = logits.split_at(batch);
    let mut out = GanLossOut {
        d_grad: vec![0.0; 2 * batch],
        g_grad: vec![0.0; batch],
        metrics: [0.0; 4],
    };
    for i in 0..batch {
        let (sr, sf) = (sigmoid(real[i]), sigmoid(fake[i]));
        out.metrics[0] += 0.5 * (bce_with_logit(real[i], real_label) + bce_with_logit(fake[i], fake_label)) / n;
        out.metrics[1] += bce_with_logit(fake[i], 1.0) / n;
        out.metrics[2] += sr / n;
        out.metrics[3] += sf / n;
        out.d_grad[i] = (sr - real_label) * 0.5 / n;
        out.d_grad[batch + i] = (sf - fake_label) * 0.5 / n;
        out.g_grad[i] = (sf - 1.0) / n;
    }
    out
}

/// The hinge loss over logits [2B] (real rows then fake rows), the metrics D's raw outputs.
pub fn gan_hinge_loss(logits: &[f64], batch: usize) -> GanLossOut {
    let n = batch as f64;
    let (real, fake) = logits.split_at(batch);
    let mut out = GanLossOut { d_grad: vec![0.0; 2 * batch], g_grad: vec![-1.0 / n; batch], metrics: [0.0; 4] };
    for i in 0..batch {
        out.metrics[0] += 0.5 * ((1.0 - real[i]).max(0.0) + (1.0 + fake[i]).max(0.0)) / n;
        out.metrics[1] -= fake[i] / n;
        out.metrics[2] += real[i] / n;
        out.metrics[3] += fake[i] / n;
        out.d_grad[i] = if real[i] < 1.0 { -0.5 / n } else { 0.0 };
        out.d_grad[batch + i] = if fake[i] > -1.0 { 0.5 / n } else { 0.0 };
    }
    out
}

/// stats [rows, 2 latent] = mu | logvar per row. Returns (z [rows, latent], kl_row [rows]).
pub fn reparam_kl_forward(stats: &[f64], eps: &[f64], rows: usize, latent: usize) -> (Vec<f64>, Vec<f64>) {
    let mut z = vec![0.0; rows * latent];
    let mut kl = vec![0.0; rows];
    for r in 0..rows {
        for j in 0..latent {
            let mu = stats[r * 2 * latent + j];
            let lv = stats[r * 2 * latent + latent + j];
            z[r * latent + j] = mu + (0.5 * lv).exp() * eps[r * latent + j];
            kl[r] += -0.5 * (1.0 + lv - mu * mu - lv.exp());
        }
    }
    (z, kl)
}

/// dstats from dz plus grad_scale times the KL term's gradient.
pub fn reparam_kl_backward(stats: &[f64], eps: &[f64], dz: &[f64], rows: usize, latent: usize, grad_scale: f64) -> Vec<f64> {
    let mut d = vec![0.0; rows * 2 * latent];
    for r in 0..rows {
        for j in 0..latent {
            let mu_at = r * 2 * latent + j;
            let lv_at = mu_at + latent;
            let (mu, lv) = (stats[mu_at], stats[lv_at]);
            let g = dz[r * latent + j];
            d[mu_at] = g + grad_scale * mu;
            d[lv_at] = g * eps[r * latent + j] * 0.5 * (0.5 * lv).exp() + grad_scale * 0.5 * (lv.exp() - 1.0);
        }
    }
    d
}

/// metrics[slot] += scale · Σ values.
pub fn sum_accumulate(values: &[f64], metrics: &mut [f64], slot: usize, scale: f64) {
    metrics[slot] += scale * values.iter().sum::<f64>();
}
