//! A folder of images decoded once: the data set is kept under the cache folder, named by a
//! hash of the folder's listing (each file's path, size and modification time) and the options,
//! so the next run on the same folder starts at once and a changed file is decoded afresh.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::folder::{from_images, is_image};
use super::{Classes, DataError, Dataset, ImageOptions, ImageShape, Split};

/// `$XDG_CACHE_HOME/wgen`, else `~/.cache/wgen`; None where neither is set.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wgen"))
}

/// Bumped whenever decoding changes what a folder gives, so no older cache is read.
const FORMAT: &str = "wgen-images-1";

/// What a cache file holds before its bytes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    format: String,
    source: String,
    classes: Classes,
    skipped: Vec<String>,
    shape: ImageShape,
    train: usize,
    test: usize,
}

/// The folder's data set, from the cache when its listing is unchanged.
pub(super) fn load_folder(dir: &Path, options: &ImageOptions, progress: &mut dyn FnMut(usize, usize)) -> Result<Dataset, DataError> {
    let source = dir.display().to_string();
    let mut files = Vec::new();
    list(dir, "", &mut files).map_err(|e| DataError::Io { file: source.clone(), source: e })?;
    files.sort();
    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let cached = cache_dir().map(|d| d.join("images").join(format!("{}.bin", key(dir, &files, options))));
    if let Some(dataset) = cached.as_deref().and_then(|file| read(file).ok()) {
        return Ok(dataset);
    }
    let read_image = |path: &str| std::fs::read(dir.join(path)).map_err(|e| e.to_string());
    let dataset = from_images(&paths, &read_image, &source, options, progress)?;
    // A cache that cannot be written costs only the next run's decoding.
    if let Some(file) = cached {
        let _ = write(&file, &dataset);
    }
    Ok(dataset)
}

/// Folders nested deeper are not searched: a link back up the tree would otherwise loop.
const MAX_DEPTH: usize = 32;

/// Appends the images under `dir/prefix` as (relative path, fingerprint of size and time),
/// skipping hidden files and folders.
fn list(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    if prefix.matches('/').count() >= MAX_DEPTH {
        return Err(std::io::Error::other(format!("{prefix}: folders nested more than {MAX_DEPTH} deep (a link that loops?)")));
    }
    for entry in std::fs::read_dir(dir.join(prefix))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let meta = std::fs::metadata(entry.path())?;
        if meta.is_dir() {
            list(dir, &path, out)?;
        } else if is_image(&name) {
            let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            out.push((path, format!("{}:{modified}", meta.len())));
        }
    }
    Ok(())
}

fn key(dir: &Path, files: &[(String, String)], options: &ImageOptions) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(FORMAT);
    h.update(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).to_string_lossy().as_bytes());
    h.update(serde_json::to_string(options).expect("options serialise"));
    for (path, stamp) in files {
        h.update(format!("\n{path}\t{stamp}"));
    }
    h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// A header line of JSON, then the training images and labels, then the test split's.
fn write(file: &Path, dataset: &Dataset) -> std::io::Result<()> {
    std::fs::create_dir_all(file.parent().expect("a cache file has a folder"))?;
    let header = Header {
        format: FORMAT.to_string(),
        source: dataset.source.clone(),
        classes: dataset.classes.clone(),
        skipped: dataset.skipped.clone(),
        shape: dataset.shape(),
        train: dataset.train.count,
        test: dataset.test.count,
    };
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n")?;
        for split in [&dataset.train, &dataset.test] {
            out.write_all(&split.images)?;
            out.write_all(&split.labels)?;
        }
        out.flush()?;
    }
    std::fs::rename(&tmp, file)
}

fn read(file: &Path) -> Result<Dataset, String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let end = bytes.iter().position(|&b| b == b'\n').ok_or("no header")?;
    let header: Header = serde_json::from_slice(&bytes[..end]).map_err(|e| e.to_string())?;
    if header.format != FORMAT {
        return Err("another format".into());
    }
    let mut rest = &bytes[end + 1..];
    let mut take = |n: usize| -> Result<Vec<u8>, String> {
        let (head, tail) = rest.split_at_checked(n).ok_or("truncated")?;
        rest = tail;
        Ok(head.to_vec())
    };
    let mut split = |count: usize| -> Result<Split, String> {
        Ok(Split { images: take(count * header.shape.values())?, labels: take(count)?, count, shape: header.shape })
    };
    let (train, test) = (split(header.train)?, split(header.test)?);
    Ok(Dataset { train, test, source: header.source, classes: header.classes, skipped: header.skipped })
}
