//! MNIST-format datasets: the four standard IDX files, plain or gzip-compressed, read from a
//! folder or from the copy of `assets/mnist-10k` built into the binary.

use std::io::Read;
use std::path::{Path, PathBuf};

/// What can be wrong with a dataset; each message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data folder {0} does not exist (pass --data DIR with the four MNIST files, or omit --data for the built-in digits)")]
    NoFolder(PathBuf),
    #[error("--data {0} is a file; pass the folder that holds the four MNIST files")]
    NotAFolder(PathBuf),
    #[error("{dir}: missing {name} (or {name}.gz); an MNIST-format folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte")]
    MissingFile { dir: PathBuf, name: String },
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: corrupt gzip stream ({detail})")]
    Gzip { file: String, detail: String },
    #[error("{file}: {detail}")]
    Format { file: String, detail: String },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch { images: String, n_images: usize, labels: String, n_labels: usize },
    #[error("{file}: images are {rows}×{cols}; wgen's models take 28×28")]
    NotMnistSize { file: String, rows: usize, cols: usize },
    #[error("{0}: holds no images")]
    Empty(String),
}

/// One split: `count` images of rows×cols bytes, row-major, and their labels.
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
}

impl Split {
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// Classes 0..=the largest label (at least 1).
    pub fn classes(&self) -> usize {
        self.labels.iter().max().map_or(1, |&l| usize::from(l) + 1)
    }
}

pub struct Dataset {
    pub train: Split,
    pub test: Split,
    /// Where it came from, for logs and run configs.
    pub source: String,
}

impl Dataset {
    /// A name for the data itself, whatever folder or compression it came in: the first 16
    /// hex digits of the SHA-256 of both splits' images and labels.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for split in [&self.train, &self.test] {
            h.update((split.count as u64).to_le_bytes());
            h.update(&split.images);
            h.update(&split.labels);
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// The four files of an MNIST-format folder, in the order `from_files` takes them.
/// Images are SIDE × SIDE pixels, one channel: every model reads them as rows of IMAGE values.
pub const SIDE: usize = 28;
/// Values per image.
pub const IMAGE: usize = SIDE * SIDE;

pub const FILES: [&str; 4] = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

const EMBEDDED: [&[u8]; 4] = [
    include_bytes!("../../assets/mnist-10k/train-images-idx3-ubyte.gz"),
    include_bytes!("../../assets/mnist-10k/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../assets/mnist-10k/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../assets/mnist-10k/t10k-labels-idx1-ubyte.gz"),
];

/// The folder's dataset, or the built-in 9,000/1,000 MNIST digits when `dir` is None.
pub fn load(dir: Option<&Path>) -> Result<Dataset, DataError> {
    let (files, source) = match dir {
        None => (
            std::array::from_fn(|i| (format!("built-in {}.gz", FILES[i]), EMBEDDED[i].to_vec())),
            "built-in mnist-10k".to_string(),
        ),
        Some(dir) => {
            if dir.is_file() {
                return Err(DataError::NotAFolder(dir.to_path_buf()));
            }
            if !dir.is_dir() {
                return Err(DataError::NoFolder(dir.to_path_buf()));
            }
            let [a, b, c, d] = FILES.map(|name| read_file(dir, name));
            ([a?, b?, c?, d?], dir.display().to_string())
        }
    };
    from_files(files, source)
}

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
        if (rows, cols) != (SIDE, SIDE) {
            return Err(DataError::NotMnistSize { file: images.0.clone(), rows, cols });
        }
        if let Some(bad) = label_bytes.iter().find(|&&l| l > 9) {
            return Err(DataError::Format { file: labels.0.clone(), detail: format!("label {bad} is not a digit class 0-9") });
        }
        Ok(Split { images: pixels.to_vec(), labels: label_bytes.to_vec(), count, rows, cols })
    };
    Ok(Dataset { train: split(&decoded[0], &decoded[1])?, test: split(&decoded[2], &decoded[3])?, source })
}

fn read_file(dir: &Path, name: &str) -> Result<(String, Vec<u8>), DataError> {
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

/// A split on the GPU: its pixels as packed bytes, uploaded once, and the order its batches
/// are gathered in (rewritten each epoch: a few kilobytes, never pixels).
pub struct DeviceSplit {
    /// [count, pixels] bytes, four to a u32
    pub pixels: crate::gpu::Tensor,
    /// [count] u32 image indices
    pub order: crate::gpu::Tensor,
    /// [count] label bytes, four to a u32
    pub labels: crate::gpu::Tensor,
    pub count: usize,
}

impl DeviceSplit {
    pub fn upload(gpu: &crate::gpu::Gpu, name: &str, split: &Split) -> Result<DeviceSplit, crate::gpu::GpuError> {
        let identity: Vec<u32> = (0..split.count as u32).collect();
        Ok(DeviceSplit {
            pixels: crate::gpu::Tensor::from_bytes(gpu, &format!("{name}.pixels"), &[split.count, split.pixels()], &split.images)?,
            order: crate::gpu::Tensor::from_bytes(gpu, &format!("{name}.order"), &[split.count], bytemuck::cast_slice(&identity))?,
            labels: crate::gpu::Tensor::from_bytes(gpu, &format!("{name}.labels"), &[split.count], &split.labels)?,
            count: split.count,
        })
    }

    pub fn set_order(&self, gpu: &crate::gpu::Gpu, order: &[u32]) {
        assert_eq!(order.len(), self.count);
        gpu.queue.write_buffer(&self.order.buffer, 0, bytemuck::cast_slice(order));
    }
}
