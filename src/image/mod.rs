//! PNG grids of 28×28 images.

use std::path::Path;

/// A grid of greyscale images in [0, 1], `cols` per row, with `pad` black pixels between and
/// around them, each pixel repeated `scale` times in both directions.
pub fn grid(images: &[f32], side: usize, cols: usize, pad: usize, scale: usize) -> (Vec<u8>, usize, usize) {
    let pixels = side * side;
    let n = images.len() / pixels;
    let cols = cols.max(1);
    let rows = n.div_ceil(cols).max(1);
    let cell = side * scale + pad;
    let (width, height) = (cols * cell + pad, rows * cell + pad);
    let mut out = vec![0u8; width * height];
    for i in 0..n {
        let (gy, gx) = (i / cols, i % cols);
        for y in 0..side * scale {
            for x in 0..side * scale {
                let v = images[i * pixels + (y / scale) * side + x / scale];
                let byte = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                out[(pad + gy * cell + y) * width + pad + gx * cell + x] = byte;
            }
        }
    }
    (out, width, height)
}

/// Writes greyscale pixels as a PNG, through a temporary file renamed into place.
pub fn write_png(path: &Path, pixels: &[u8], width: usize, height: usize) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("png.tmp");
    {
        let file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(pixels)?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
