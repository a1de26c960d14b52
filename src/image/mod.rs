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

/// Rows of `cols` originals, each followed by the row of their counterparts (test images over
/// their reconstructions).
pub fn interleave_rows(originals: &[f32], counterparts: &[f32], cols: usize, pixels: usize) -> Vec<f32> {
    let n = originals.len() / pixels;
    let mut out = Vec::with_capacity(2 * originals.len());
    for row in 0..n.div_ceil(cols) {
        let range = row * cols * pixels..((row + 1) * cols).min(n) * pixels;
        out.extend_from_slice(&originals[range.clone()]);
        out.extend_from_slice(&counterparts[range]);
    }
    out
}

/// Reads a greyscale 8-bit PNG: (pixels, width, height).
pub fn read_png(path: &Path) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    use anyhow::Context;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().with_context(|| format!("{} is not a PNG", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).with_context(|| format!("{}: unreadable PNG data", path.display()))?;
    if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Eight {
        anyhow::bail!("{}: not an 8-bit greyscale grid written by wgen", path.display());
    }
    buf.truncate(info.buffer_size());
    Ok((buf, info.width as usize, info.height as usize))
}

/// Places equal-sized greyscale pictures `cols` to a row with `pad` pixels between.
pub fn tile(pictures: &[(Vec<u8>, usize, usize)], cols: usize, pad: usize) -> (Vec<u8>, usize, usize) {
    let (w, h) = pictures.iter().fold((0, 0), |(w, h), p| (w.max(p.1), h.max(p.2)));
    let cols = cols.clamp(1, pictures.len().max(1));
    let rows = pictures.len().div_ceil(cols).max(1);
    let (width, height) = (cols * (w + pad) + pad, rows * (h + pad) + pad);
    let mut out = vec![255u8; width * height];
    for (i, (pixels, pw, ph)) in pictures.iter().enumerate() {
        let (x0, y0) = (pad + (i % cols) * (w + pad), pad + (i / cols) * (h + pad));
        for y in 0..*ph {
            out[(y0 + y) * width + x0..(y0 + y) * width + x0 + pw].copy_from_slice(&pixels[y * pw..(y + 1) * pw]);
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
