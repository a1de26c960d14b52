/// out [rows, dim] = table[label[r]] ([classes, dim] row-major), or the one-hot vector of
/// label[r] over `dim` classes when `table` is None.
pub fn embedding_forward(labels: &[usize], table: Option<&[f64]>, dim: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(labels.len() * dim);
    for &c in labels {
        match table {
            Some(t) => out.extend_from_slice(&t[c * dim..(c + 1) * dim]),
            None => out.extend((0..dim).map(|j| if j == c { 1.0 } else { 0.0 })),
        }
    }
    out
}

/// [rows, classes · plane]: each label as `classes` constant planes of `plane` values, ones in
/// the label's plane (a conv layer's label channels).
pub fn one_hot_planes(labels: &[usize], classes: usize, plane: usize) -> Vec<f64> {
    embedding_forward(labels, None, classes).iter().flat_map(|&v| std::iter::repeat_n(v, plane)).collect()
}

/// d_table [classes, dim]: each row's gradient added to the row of its label.
pub fn embedding_backward(labels: &[usize], d_out: &[f64], classes: usize, dim: usize) -> Vec<f64> {
    let mut d = vec![0.0; classes * dim];
    for (r, &c) in labels.iter().enumerate() {
        for j in 0..dim {
            d[c * dim + j] += d_out[r * dim + j];
        }
    }
    d
}

/// [rows, a + b]: each row of `left` [rows, a] followed by the same row of `right` [rows, b].
pub fn concat_columns(left: &[f64], a: usize, right: &[f64], b: usize) -> Vec<f64> {
    let rows = left.len().checked_div(a).unwrap_or_else(|| right.len() / b.max(1));
    let mut out = Vec::with_capacity(rows * (a + b));
    for r in 0..rows {
        out.extend_from_slice(&left[r * a..(r + 1) * a]);
        out.extend_from_slice(&right[r * b..(r + 1) * b]);
    }
    out
}

/// Columns `start..start + n` of every row of a [rows, cols] matrix.
pub fn columns(x: &[f64], cols: usize, start: usize, n: usize) -> Vec<f64> {
    x.chunks(cols).flat_map(|row| row[start..start + n].iter().copied()).collect()
}

/// logits [rows] = heads[r, 0] + heads[r, 1 + label[r]] over heads [rows, 1 + classes].
pub fn class_logit_forward(labels: &[usize], heads: &[f64]) -> Vec<f64> {
    let dim = heads.len() / labels.len().max(1);
    labels.iter().enumerate().map(|(r, &c)| heads[r * dim] + heads[r * dim + 1 + c]).collect()
}

/// d_heads [rows, dim]: each row's logit gradient at its shared head and its class head.
pub fn class_logit_backward(labels: &[usize], d_logits: &[f64], dim: usize) -> Vec<f64> {
    let mut d = vec![0.0; labels.len() * dim];
    for (r, (&c, &g)) in labels.iter().zip(d_logits).enumerate() {
        d[r * dim] = g;
        d[r * dim + 1 + c] = g;
    }
    d
}
