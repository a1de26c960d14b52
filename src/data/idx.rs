//! MNIST-format folders: the four standard IDX files of unsigned bytes, plain or gzip-compressed.

use std::io::Read;
use std::path::Path;

use super::{Classes, DataError, Dataset, ImageShape, Split};

/// The four files of an MNIST-format folder, in the order `from_files` takes them.
pub const FILES: [&str; 4] = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

pub(super) const EMBEDDED: [&[u8]; 4] = [
    include_bytes!("../../assets/mnist-10k/train-images-idx3-ubyte.gz"),
    include_bytes!("../../assets/mnist-10k/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../assets/mnist-10k/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../assets/mnist-10k/t10k-labels-idx1-ubyte.gz"),
];

/// The dataset in the four standard files' bytes, gzip or plain, in the order train images,
/// train labels, test images, test labels, each with the name its errors show; `source` names
/// where they came from. The browser fetches the files and comes in here, as `load` does.
pub fn from_files(files: [(String, Vec<u8>); 4], source: String) -> Result<Dataset, DataError> {
    let mut decoded = Vec::with_capacity(4);
    for (name, bytes) in files {
        let raw = gunzip_if_needed(&name, bytes)?;
        decoded.push((name, raw));
    }
    let split = |images: &(String, Vec<u8>), labels: &(String, Vec<u8>)| -> Result<Split, DataError> {
        let (count, rows, cols, pixels) = parse_idx(&images.0, &images.1, 3)?;
        let (n_labels, _, _, label_bytes) = parse_idx(&labels.0, &labels.1, 1)?;
        if count != n_labels {
            return Err(DataError::CountMismatch { images: images.0.clone(), n_images: count, labels: labels.0.clone(), n_labels });
        }
        if count == 0 {
            return Err(DataError::Empty(images.0.clone()));
        }
        if rows != cols {
            return Err(DataError::NotSquare { file: images.0.clone(), rows, cols });
        }
        if let Some(bad) = label_bytes.iter().find(|&&l| l > 9) {
            return Err(DataError::Format { file: labels.0.clone(), detail: format!("label {bad} is not a digit class 0-9") });
        }
        Ok(Split { images: pixels.to_vec(), labels: label_bytes.to_vec(), count, shape: ImageShape { channels: 1, side: rows } })
    };
    let (train, test) = (split(&decoded[0], &decoded[1])?, split(&decoded[2], &decoded[3])?);
    if train.shape != test.shape {
        let detail = format!("test images are {0}×{0} but training images {1}×{1}", test.shape.side, train.shape.side);
        return Err(DataError::Format { file: decoded[2].0.clone(), detail });
    }
    Ok(Dataset { train, test, source, classes: Classes::Numbered, skipped: Vec::new() })
}

pub(super) fn read_file(dir: &Path, name: &str) -> Result<(String, Vec<u8>), DataError> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.is_file() {
            let label = candidate.display().to_string();
            let bytes = std::fs::read(&candidate).map_err(|source| DataError::Io { file: label.clone(), source })?;
            return Ok((label, bytes));
        }
    }
    Err(DataError::MissingFile { dir: dir.to_path_buf(), name: name.to_string() })
}

/// Decodes one IDX file's bytes, gzip or plain: (count, rows, cols, payload).
pub fn decode_idx(name: &str, bytes: Vec<u8>, dims: usize) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let raw = gunzip_if_needed(name, bytes)?;
    let (count, rows, cols, payload) = parse_idx(name, &raw, dims)?;
    Ok((count, rows, cols, payload.to_vec()))
}

/// Gzip is recognised by its magic bytes, whatever the file is called.
fn gunzip_if_needed(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip { file: name.to_string(), detail: e.to_string() })?;
    Ok(out)
}

/// Parses an IDX file of unsigned bytes with `dims` dimensions: (count, rows, cols, payload).
pub fn parse_idx<'a>(file: &str, bytes: &'a [u8], dims: usize) -> Result<(usize, usize, usize, &'a [u8]), DataError> {
    let bad = |detail: String| DataError::Format { file: file.to_string(), detail };
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is too short for an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let want = 0x0800 | dims as u32;
    if magic != want {
        return Err(bad(format!("magic number {magic:#010x}, expected {want:#010x} (unsigned-byte IDX with {dims} dimension(s))")));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad(format!("truncated header: {} bytes, need {header}", bytes.len())));
    }
    let dim = |i: usize| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize;
    let count = dim(0);
    let (rows, cols) = if dims == 3 { (dim(1), dim(2)) } else { (1, 1) };
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| bad("dimensions overflow".to_string()))?;
    let payload = &bytes[header..];
    if payload.len() != expected {
        return Err(bad(format!(
            "header promises {count}×{rows}×{cols} = {expected} bytes of data but the file holds {} (truncated or padded)",
            payload.len()
        )));
    }
    Ok((count, rows, cols, payload))
}

/// Whether `dir` is an MNIST-format folder: it holds any of the four files (a folder missing
/// some is then refused by name, not read as a folder of images).
pub(super) fn holds_idx(dir: &Path) -> bool {
    FILES.iter().any(|name| dir.join(name).is_file() || dir.join(format!("{name}.gz")).is_file())
}
