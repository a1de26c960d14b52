/// Returns (grad, row_loss, correct) as shaders/softmax_xent.wgsl computes them.
pub fn softmax_cross_entropy(logits: &[f64], labels: &[usize], rows: usize, classes: usize, grad_scale: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let probs = softmax_rows(logits, rows, classes);
    let mut grad = vec![0.0; rows * classes];
    let mut loss = vec![0.0; rows];
    let mut correct = vec![0.0; rows];
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        loss[r] = lse - row[labels[r]];
        // The first index of the maximum, as torch's argmax.
        let argmax = row.iter().position(|&v| v == m).expect("a row has a maximum");
        correct[r] = f64::from(u8::from(argmax == labels[r]));
        for c in 0..classes {
            grad[r * classes + c] = (probs[r * classes + c] - f64::from(u8::from(c == labels[r]))) * grad_scale;
        }
    }
    (grad, loss, correct)
}

pub fn softmax_rows(logits: &[f64], rows: usize, classes: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * classes];
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for c in 0..classes {
            out[r * classes + c] = (row[c] - m).exp() / sum;
        }
    }
    out
}

/// The label of each gathered image, as gather_labels writes it.
pub fn gather_labels(labels: &[u8], order: &[u32], start: usize, rows: usize) -> Vec<f64> {
    (0..rows).map(|r| f64::from(labels[order[start + r] as usize])).collect()
}

/// w = -recon + 1/2 Σ (eps² + logvar) - 1/2 Σ z² per row.
pub fn iwae_log_weight(stats: &[f64], eps: &[f64], z: &[f64], recon_row: &[f64], rows: usize, latent: usize) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            let s: f64 = (0..latent)
                .map(|j| {
                    let (e, zj) = (eps[r * latent + j], z[r * latent + j]);
                    0.5 * (e * e + stats[r * 2 * latent + latent + j] - zj * zj)
                })
                .sum();
            s - recon_row[r]
        })
        .collect()
}

/// log (1/k Σ exp) over consecutive groups of k values.
pub fn logsumexp_groups(values: &[f64], k: usize) -> Vec<f64> {
    values
        .chunks(k)
        .map(|g| {
            let m = g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m + g.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - (k as f64).ln()
        })
        .collect()
}
