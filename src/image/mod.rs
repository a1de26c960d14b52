//! PNG grids of images, grey or colour.

use std::path::Path;

use crate::data::ImageShape;

mod font;

pub use font::{glyph, label_rows, text_width, GLYPH_HEIGHT, GLYPH_WIDTH};

/// 8-bit pixels, one byte each (grey) or three (RGB, interleaved), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    /// 1 or 3
    pub channels: usize,
}

impl Picture {
    /// The same picture in RGB.
    fn rgb(&self) -> Picture {
        match self.channels {
            3 => self.clone(),
            _ => Picture { pixels: self.pixels.iter().flat_map(|&v| [v, v, v]).collect(), channels: 3, ..*self },
        }
    }
}

/// A grid of images [n, C, H, W] in [0, 1], `cols` per row, with `pad` black pixels between
/// and around them, each pixel repeated `scale` times in both directions.
pub fn grid(images: &[f32], shape: ImageShape, cols: usize, pad: usize, scale: usize) -> Picture {
    let ImageShape { channels, side } = shape;
    let n = images.len() / shape.values();
    let cols = cols.max(1);
    let rows = n.div_ceil(cols).max(1);
    let cell = side * scale + pad;
    let (width, height) = (cols * cell + pad, rows * cell + pad);
    let mut pixels = vec![0u8; width * height * channels];
    for (i, image) in images.chunks_exact(shape.values()).enumerate() {
        let (gy, gx) = (i / cols, i % cols);
        for y in 0..side * scale {
            for x in 0..side * scale {
                let at = (pad + gy * cell + y) * width + pad + gx * cell + x;
                for c in 0..channels {
                    let v = image[c * side * side + (y / scale) * side + x / scale];
                    pixels[at * channels + c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
    Picture { pixels, width, height, channels }
}

/// `grid`, and with `labels` each row of images named in a margin on its left (`label_rows`).
pub fn labelled_grid(images: &[f32], shape: ImageShape, cols: usize, pad: usize, scale: usize, labels: Option<&[String]>) -> Picture {
    let picture = grid(images, shape, cols, pad, scale);
    match labels {
        Some(labels) => label_rows(&picture, labels, shape.side * scale + pad, pad),
        None => picture,
    }
}

/// Rows of `cols` originals, each followed by the row of their counterparts (test images over
/// their reconstructions); `values` per image.
pub fn interleave_rows(originals: &[f32], counterparts: &[f32], cols: usize, values: usize) -> Vec<f32> {
    let n = originals.len() / values;
    let mut out = Vec::with_capacity(2 * originals.len());
    for row in 0..n.div_ceil(cols) {
        let range = row * cols * values..((row + 1) * cols).min(n) * values;
        out.extend_from_slice(&originals[range.clone()]);
        out.extend_from_slice(&counterparts[range]);
    }
    out
}

/// Reads an 8-bit grey or RGB PNG that wgen wrote.
pub fn read_png(path: &Path) -> anyhow::Result<Picture> {
    use anyhow::Context;
    let image = image::open(path).with_context(|| format!("cannot read {} as a PNG", path.display()))?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    Ok(match image {
        image::DynamicImage::ImageLuma8(grey) => Picture { pixels: grey.into_raw(), width, height, channels: 1 },
        image::DynamicImage::ImageRgb8(rgb) => Picture { pixels: rgb.into_raw(), width, height, channels: 3 },
        _ => anyhow::bail!("{}: not an 8-bit grey or RGB grid written by wgen", path.display()),
    })
}

/// Places pictures `cols` to a row with `pad` white pixels between, in colour if any is.
pub fn tile(pictures: &[Picture], cols: usize, pad: usize) -> Picture {
    let channels = pictures.iter().map(|p| p.channels).max().unwrap_or(1);
    let (w, h) = pictures.iter().fold((0, 0), |(w, h), p| (w.max(p.width), h.max(p.height)));
    let cols = cols.clamp(1, pictures.len().max(1));
    let rows = pictures.len().div_ceil(cols).max(1);
    let (width, height) = (cols * (w + pad) + pad, rows * (h + pad) + pad);
    let mut pixels = vec![255u8; width * height * channels];
    for (i, picture) in pictures.iter().enumerate() {
        let picture = if picture.channels == channels { picture.clone() } else { picture.rgb() };
        let (x0, y0) = (pad + (i % cols) * (w + pad), pad + (i / cols) * (h + pad));
        let row = picture.width * channels;
        for y in 0..picture.height {
            let at = ((y0 + y) * width + x0) * channels;
            pixels[at..at + row].copy_from_slice(&picture.pixels[y * row..(y + 1) * row]);
        }
    }
    Picture { pixels, width, height, channels }
}

/// Writes a picture as a PNG, through a temporary file renamed into place.
pub fn write_png(path: &Path, picture: &Picture) -> anyhow::Result<()> {
    use anyhow::Context;
    let colour = if picture.channels == 3 { image::ExtendedColorType::Rgb8 } else { image::ExtendedColorType::L8 };
    let tmp = path.with_extension("png.tmp");
    image::save_buffer_with_format(&tmp, &picture.pixels, picture.width as u32, picture.height as u32, colour, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
