/// out [rows, cols] = data[order[start + r] * cols + c] · scale + shift.
pub fn gather_rows(data: &[u8], order: &[u32], start: usize, rows: usize, cols: usize, scale: f64, shift: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let item = order[start + r] as usize;
        out.extend(data[item * cols..(item + 1) * cols].iter().map(|&b| f64::from(b) * scale + shift));
    }
    out
}

/// out [rows, channels·h·w]: each image moved by (shifts[2r] − most, shifts[2r + 1] − most)
/// rows and columns, zeros shifted in.
pub fn shift_images(input: &[f64], shifts: &[f64], (channels, height, width): (usize, usize, usize), most: usize) -> Vec<f64> {
    let plane = height * width;
    let mut out = vec![0.0; input.len()];
    for (r, image) in input.chunks(channels * plane).enumerate() {
        let (dy, dx) = (shifts[2 * r] as isize - most as isize, shifts[2 * r + 1] as isize - most as isize);
        for c in 0..channels {
            for y in 0..height as isize {
                for x in 0..width as isize {
                    let (sy, sx) = (y - dy, x - dx);
                    if (0..height as isize).contains(&sy) && (0..width as isize).contains(&sx) {
                        out[r * channels * plane + c * plane + (y * width as isize + x) as usize] = image[c * plane + (sy * width as isize + sx) as usize];
                    }
                }
            }
        }
    }
    out
}
