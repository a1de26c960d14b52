//! Data sets: MNIST-format IDX files (`idx`), or a folder of PNG and JPEG images (`folder`),
//! decoded once into a cache (`cache`); both give `Dataset`s of square images as bytes, which
//! `DeviceSplit` uploads once, or streams batch by batch when they exceed one storage binding.

use std::path::{Path, PathBuf};

mod cache;
mod device;
pub mod folder;
pub mod idx;
pub mod samples;

pub use cache::cache_dir;
pub use device::DeviceSplit;
pub use idx::{decode_idx, from_files, parse_idx, FILES};

/// What can be wrong with a dataset; each message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data folder {0} does not exist (pass --data DIR: a folder of images or the four MNIST files; omit --data for the built-in digits)")]
    NoFolder(PathBuf),
    #[error("--data {0} is a file; pass the folder that holds the images (or the four MNIST files)")]
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
    #[error("{file}: images are {rows}×{cols}; wgen's models take square images")]
    NotSquare { file: String, rows: usize, cols: usize },
    #[error("{0}: holds no images")]
    Empty(String),
    #[error("{0}: {1}")]
    Folder(String, String),
    #[error("{0}")]
    Options(String),
}

/// The shape of every image of a data set, and of what a model reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub side: usize,
}

impl ImageShape {
    /// MNIST's 28×28 grey digits: the built-in data, and what every model file from before
    /// shapes were recorded holds.
    pub const MNIST: ImageShape = ImageShape { channels: 1, side: 28 };

    pub const fn pixels(self) -> usize {
        self.side * self.side
    }

    /// Values per image, channel planes one after another (C, H, W).
    pub const fn values(self) -> usize {
        self.channels * self.pixels()
    }
}

impl Default for ImageShape {
    fn default() -> Self {
        ImageShape::MNIST
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let colour = if self.channels == 1 { "grey" } else { "colour" };
        write!(f, "{0}×{0} {colour}", self.side)
    }
}

/// How a folder's images become a data set's: `--size`, `--channels` and `--background`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageOptions {
    /// Side of the square images (None: the size every image shares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// 1 or 3 (None: 1 if every image is grey, else 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// What transparent pixels are composited onto.
    #[serde(default)]
    pub background: Background,
}

impl ImageOptions {
    /// A folder read at a trained model's shape.
    pub fn for_shape(shape: ImageShape) -> ImageOptions {
        ImageOptions { size: Some(shape.side), channels: Some(shape.channels), background: Background::default() }
    }

    pub fn check(&self) -> Result<(), DataError> {
        if self.size.is_some_and(|s| !(4..=256).contains(&s)) {
            return Err(DataError::Options(format!("--size must be between 4 and 256, got {}", self.size.unwrap_or(0))));
        }
        if self.channels.is_some_and(|c| c != 1 && c != 3) {
            return Err(DataError::Options(format!("--channels must be 1 (grey) or 3 (RGB), got {}", self.channels.unwrap_or(0))));
        }
        Ok(())
    }
}

/// An sRGB colour: `black`, `white`, `grey` or `#rrggbb`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Background(pub [u8; 3]);

impl TryFrom<String> for Background {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Background> for String {
    fn from(b: Background) -> String {
        format!("#{:02x}{:02x}{:02x}", b.0[0], b.0[1], b.0[2])
    }
}

impl std::str::FromStr for Background {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let named = match s.to_ascii_lowercase().as_str() {
            "black" => Some([0, 0, 0]),
            "white" => Some([255, 255, 255]),
            "grey" | "gray" => Some([128, 128, 128]),
            _ => None,
        };
        let hex = || {
            let h = s.strip_prefix('#').filter(|h| h.len() == 6 && h.is_ascii())?;
            let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
            Some([byte(0)?, byte(2)?, byte(4)?])
        };
        named.or_else(hex).map(Background).ok_or_else(|| format!("{s} is not a colour: give black, white, grey or #rrggbb"))
    }
}

/// What a data set's labels mean.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Classes {
    /// IDX labels: class i is the number i.
    Numbered,
    /// A folder's subfolders, label i the i-th name in sorted order.
    Named(Vec<String>),
    /// A flat folder: every label is 0 and means nothing.
    Unlabelled,
}

/// One split: `count` images as bytes, [count, channels, side, side], and their labels.
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub count: usize,
    pub shape: ImageShape,
}

impl Split {
    /// Classes 0..=the largest label (at least 1).
    pub fn classes(&self) -> usize {
        self.labels.iter().max().map_or(1, |&l| usize::from(l) + 1)
    }

    /// The images in [0, 1], [count, channels, side, side].
    pub fn unit_floats(&self) -> Vec<f32> {
        self.images.iter().map(|&b| f32::from(b) / 255.0).collect()
    }

    /// `n` of the images (all, if n ≥ count) evenly spaced through the split, in [0, 1]: a
    /// folder's split runs class by class, so its first n would leave out the last classes.
    pub fn spread_floats(&self, n: usize) -> Vec<f32> {
        let (n, values) = (n.min(self.count), self.shape.values());
        (0..n).flat_map(|i| self.images[i * self.count / n * values..][..values].iter().map(|&b| f32::from(b) / 255.0)).collect()
    }
}

impl Split {
    /// `n` of the images (all, if n ≥ count), spread evenly over the classes: the classes take
    /// turns, so each keeps about n / classes (a small class all it has, the others the rest),
    /// and a class's images are taken evenly spaced through it.
    pub fn spread_over_classes(&self, n: usize) -> Split {
        let mut members = vec![Vec::new(); self.classes()];
        self.labels.iter().enumerate().for_each(|(i, &l)| members[usize::from(l)].push(i));
        let mut quota = vec![0; members.len()];
        let mut left = n.min(self.count);
        while left > 0 {
            for (q, m) in quota.iter_mut().zip(&members) {
                if left > 0 && *q < m.len() {
                    *q += 1;
                    left -= 1;
                }
            }
        }
        let mut kept: Vec<usize> = members.iter().zip(&quota).flat_map(|(m, &q)| (0..q).map(move |j| m[j * m.len() / q])).collect();
        kept.sort_unstable();
        let values = self.shape.values();
        Split {
            images: kept.iter().flat_map(|&i| &self.images[i * values..(i + 1) * values]).copied().collect(),
            labels: kept.iter().map(|&i| self.labels[i]).collect(),
            count: kept.len(),
            shape: self.shape,
        }
    }
}

pub struct Dataset {
    pub train: Split,
    pub test: Split,
    /// Where it came from, for logs and run configs.
    pub source: String,
    pub classes: Classes,
    /// One line for each image that could not be read and was left out.
    pub skipped: Vec<String>,
}

impl Dataset {
    /// A name for the data itself, whatever folder or compression it came in: the first 16
    /// hex digits of the SHA-256 of both splits' images and labels (and of the shape, where it
    /// is not MNIST's, which fingerprints from before shapes were recorded leave out).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        if self.train.shape != ImageShape::MNIST {
            h.update(format!("{:?}", self.train.shape));
        }
        for split in [&self.train, &self.test] {
            h.update((split.count as u64).to_le_bytes());
            h.update(&split.images);
            h.update(&split.labels);
        }
        h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    pub fn shape(&self) -> ImageShape {
        self.train.shape
    }

    /// Whether the labels mean something (IDX files, a folder of class folders).
    pub fn labelled(&self) -> bool {
        self.classes != Classes::Unlabelled
    }

    /// A folder's class names (its subfolders, in label order); None for numbered classes.
    pub fn class_names(&self) -> Option<&[String]> {
        match &self.classes {
            Classes::Named(names) => Some(names),
            _ => None,
        }
    }

    /// How class `c` is shown: its folder's name, or its number.
    pub fn class_label(&self, c: usize) -> String {
        self.class_names().and_then(|n| n.get(c)).cloned().unwrap_or_else(|| c.to_string())
    }

    /// One line for each class the test split has no image of (a folder's class of one
    /// image, which only trains).
    pub fn untested_classes(&self) -> Vec<String> {
        let Classes::Named(names) = &self.classes else { return Vec::new() };
        let tested: std::collections::BTreeSet<u8> = self.test.labels.iter().copied().collect();
        let count = |class: u8| self.train.labels.iter().filter(|&&l| l == class).count();
        (0..names.len())
            .filter(|&i| !tested.contains(&(i as u8)))
            .map(|i| format!("class {} has {} image{}: it trains, and no test image scores it", names[i], count(i as u8), if count(i as u8) == 1 { "" } else { "s" }))
            .collect()
    }
}

/// The built-in 9,000/1,000 MNIST digits (`dir` None), a folder's four IDX files, or its
/// images (searched recursively, a subfolder per class); `progress(done, total)` follows the
/// decoding of images that are not cached yet.
pub fn load(dir: Option<&Path>, options: &ImageOptions, progress: &mut dyn FnMut(usize, usize)) -> Result<Dataset, DataError> {
    options.check()?;
    let dataset = match dir {
        None => {
            let files = std::array::from_fn(|i| (format!("built-in {}.gz", FILES[i]), idx::EMBEDDED[i].to_vec()));
            from_files(files, "built-in mnist-10k".to_string())?
        }
        Some(dir) => {
            if dir.is_file() {
                return Err(DataError::NotAFolder(dir.to_path_buf()));
            }
            if !dir.is_dir() {
                return Err(DataError::NoFolder(dir.to_path_buf()));
            }
            if !idx::holds_idx(dir) {
                return cache::load_folder(dir, options, progress);
            }
            let [a, b, c, d] = FILES.map(|name| idx::read_file(dir, name));
            from_files([a?, b?, c?, d?], dir.display().to_string())?
        }
    };
    folder::conform(dataset, options)
}

/// The built-in digits, as every model trained on them reads them.
pub fn builtin() -> Dataset {
    load(None, &ImageOptions::default(), &mut |_, _| {}).expect("the built-in digits are well formed")
}
