/// out [rows, cols] = data[order[start + r] * cols + c] · scale + shift.
pub fn gather_rows(data: &[u8], order: &[u32], start: usize, rows: usize, cols: usize, scale: f64, shift: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let item = order[start + r] as usize;
        out.extend(data[item * cols..(item + 1) * cols].iter().map(|&b| f64::from(b) * scale + shift));
    }
    out
}
