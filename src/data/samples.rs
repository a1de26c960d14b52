//! Images made elsewhere, read for the judge: a raw file of `[n, C, H, W]` little-endian f32
//! in [0, 1] with no header (what `wgen sample --raw` writes), or a folder of PNG/JPEG files.

use std::path::{Path, PathBuf};

use super::folder::{composite, is_image, planes, reader};
use super::ImageShape;

#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{file} holds {bytes} bytes, not a whole number of {shape} images ({per} bytes each as f32: [n, {channels}, {side}, {side}]); pass --shape C,H,W if its images are another shape")]
    NotWhole { file: PathBuf, bytes: u64, shape: ImageShape, per: usize, channels: usize, side: usize },
    #[error("{0} holds no images")]
    Empty(PathBuf),
    #[error("{file}: image {index} has the value {value} at position {at}; samples are in [0, 1] (map a tanh output x to (x + 1) / 2 first)")]
    OutOfRange { file: PathBuf, index: usize, at: usize, value: f32 },
    #[error("{0} holds no PNG or JPEG images")]
    NoImages(PathBuf),
    #[error("{file} is {width}×{height}; the judge scores {shape} images like the test split's ({side}×{side}, or pass --shape C,H,W and data of that size)")]
    WrongSize { file: PathBuf, width: u32, height: u32, shape: ImageShape, side: usize },
    #[error("{0}: {1}")]
    Unreadable(PathBuf, String),
}

/// The images of a raw f32 file, checked to be whole images of `shape` in [0, 1].
pub fn read_raw(file: &Path, shape: ImageShape) -> Result<Vec<f32>, SamplesError> {
    let bytes = std::fs::read(file).map_err(|e| SamplesError::Io(file.to_path_buf(), e))?;
    let per = 4 * shape.values();
    if bytes.len() % per != 0 {
        return Err(SamplesError::NotWhole { file: file.to_path_buf(), bytes: bytes.len() as u64, shape, per, channels: shape.channels, side: shape.side });
    }
    if bytes.is_empty() {
        return Err(SamplesError::Empty(file.to_path_buf()));
    }
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(SamplesError::OutOfRange { file: file.to_path_buf(), index: i / shape.values(), at: i % shape.values(), value: values[i] });
    }
    Ok(values)
}

/// The PNG and JPEG files directly in `dir`, in name order, as `[n, C, H, W]` floats in
/// [0, 1]: each must be `shape`'s size (never resized, which would change the scores); grey or
/// colour files are converted to `shape`'s channels (luma by ITU-R 601, as the data's images
/// are), transparency laid over black.
pub fn read_folder(dir: &Path, shape: ImageShape) -> Result<Vec<f32>, SamplesError> {
    let listing = std::fs::read_dir(dir).map_err(|e| SamplesError::Io(dir.to_path_buf(), e))?;
    let mut files: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(is_image)).collect();
    files.sort();
    if files.is_empty() {
        return Err(SamplesError::NoImages(dir.to_path_buf()));
    }
    let mut out = Vec::with_capacity(files.len() * shape.values());
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| SamplesError::Io(file.clone(), e))?;
        let image = reader(&bytes).and_then(|r| r.decode().map_err(|e| e.to_string())).map_err(|e| SamplesError::Unreadable(file.clone(), e))?;
        let (width, height) = (image.width(), image.height());
        if (width as usize, height as usize) != (shape.side, shape.side) {
            return Err(SamplesError::WrongSize { file, width, height, shape, side: shape.side });
        }
        out.extend(planes(&composite(image, [0, 0, 0]), shape.channels).into_iter().map(|b| f32::from(b) / 255.0));
    }
    Ok(out)
}
