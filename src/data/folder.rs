//! A folder of images as a data set, torchvision's ImageFolder convention: each subfolder is a
//! class (its images searched recursively), or a flat folder of unlabelled images. Every
//! image is composited onto the background, resized on its short side to the data set's size
//! (a triangle filter that widens as it shrinks, as torchvision's antialiased bilinear Resize)
//! and centre-cropped; one in `TEST_ONE_IN` of each class goes to the test split, chosen by a
//! hash of its path so that a run, a later run and the browser page split the same folder
//! alike (`test_images`).

use image::{imageops, RgbImage};

use super::{Classes, DataError, Dataset, ImageOptions, ImageShape, Split};

/// The file names read as images, compared without case.
pub const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One image in this many goes to the test split.
pub const TEST_ONE_IN: u64 = 10;

/// Whether `name` is read as an image.
pub fn is_image(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// Whether a file at `path` (relative to the folder, `/`-separated) is one of its images: an
/// image's name, and no hidden file or folder on the way (as the native listing skips them).
pub fn listed(path: &str) -> bool {
    path.split('/').all(|part| !part.starts_with('.')) && is_image(path)
}

/// The first 8 bytes of the SHA-256 of `path` (relative to the folder, `/`-separated), little-endian.
fn path_hash(path: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(path.as_bytes());
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Which of the images at `paths`, of classes `labels`, are test images: those whose path hash
/// is a multiple of `TEST_ONE_IN`, class by class (a flat folder is one class), so that small
/// classes still split: a class of two or more images with none chosen gives the test split
/// its image of lowest hash, and one with all chosen keeps its image of highest hash for
/// training; a class of one image only trains.
pub fn test_images(paths: &[&str], labels: &[u8]) -> Vec<bool> {
    let hashes: Vec<u64> = paths.iter().map(|p| path_hash(p)).collect();
    let mut test: Vec<bool> = hashes.iter().map(|h| h % TEST_ONE_IN == 0).collect();
    let mut classes = std::collections::BTreeMap::<u8, Vec<usize>>::new();
    labels.iter().enumerate().for_each(|(i, &l)| classes.entry(l).or_default().push(i));
    for members in classes.into_values() {
        if members.len() < 2 {
            members.iter().for_each(|&i| test[i] = false);
            continue;
        }
        let by_hash = |i: &usize| (hashes[*i], *i);
        if members.iter().all(|&i| !test[i]) {
            test[members.iter().copied().min_by_key(by_hash).expect("two or more")] = true;
        } else if members.iter().all(|&i| test[i]) {
            test[members.iter().copied().max_by_key(by_hash).expect("two or more")] = false;
        }
    }
    test
}

/// Reads one image's bytes by its relative path; an error is one line naming the problem.
pub type ReadImage<'a> = dyn Fn(&str) -> Result<Vec<u8>, String> + Sync + 'a;

/// The data set of the images at `paths` (relative to the folder, `/`-separated, sorted),
/// whose bytes `read` gives; `source` names the folder in messages. Unreadable images are
/// left out, each named in `Dataset::skipped`.
pub fn from_images(
    paths: &[String], read: &ReadImage<'_>, source: &str, options: &ImageOptions, progress: &mut dyn FnMut(usize, usize),
) -> Result<Dataset, DataError> {
    let refuse = |why: String| DataError::Folder(source.to_string(), why);
    if paths.is_empty() {
        return Err(refuse(format!("holds no images ({}); pass a folder of images, a subfolder per class", EXTENSIONS.join(", "))));
    }
    let (classes, labels) = layout(paths).map_err(refuse)?;
    let side = match options.size {
        Some(side) => side,
        None => shared_size(paths, read).map_err(refuse)?,
    };
    let decoded = decode_all(paths, read, side, options, progress);
    let mut skipped = Vec::new();
    let mut kept = Vec::new();
    for ((path, label), image) in paths.iter().zip(&labels).zip(decoded) {
        match image {
            Ok(rgb) => kept.push((path, *label, rgb)),
            Err(why) => skipped.push(format!("{source}/{path}: {why}")),
        }
    }
    if kept.is_empty() {
        return Err(refuse(format!("none of its {} images could be read (the first: {})", paths.len(), skipped[0])));
    }
    let grey = kept.iter().all(|(_, _, rgb)| rgb.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let shape = ImageShape { channels: options.channels.unwrap_or(if grey { 1 } else { 3 }), side };
    let mut train = empty_split(shape);
    let mut test = empty_split(shape);
    let (kept_paths, kept_labels): (Vec<&str>, Vec<u8>) = kept.iter().map(|(path, label, _)| (path.as_str(), *label)).unzip();
    for (to_test, (_, label, rgb)) in test_images(&kept_paths, &kept_labels).into_iter().zip(kept) {
        let split = if to_test { &mut test } else { &mut train };
        split.images.extend(planes(&rgb, shape.channels));
        split.labels.push(label);
        split.count += 1;
    }
    check_splits(&train, &test).map_err(refuse)?;
    Ok(Dataset { train, test, source: source.to_string(), classes, skipped })
}

/// A data set read from IDX files, made to the asked size and channels.
pub(super) fn conform(mut dataset: Dataset, options: &ImageOptions) -> Result<Dataset, DataError> {
    let from = dataset.shape();
    let to = ImageShape { channels: options.channels.unwrap_or(from.channels), side: options.size.unwrap_or(from.side) };
    if to == from {
        return Ok(dataset);
    }
    for split in [&mut dataset.train, &mut dataset.test] {
        let mut images = Vec::with_capacity(split.count * to.values());
        for grey in split.images.chunks(from.pixels()) {
            let rgb = RgbImage::from_fn(from.side as u32, from.side as u32, |x, y| {
                let v = grey[y as usize * from.side + x as usize];
                image::Rgb([v, v, v])
            });
            images.extend(planes(&fit(rgb, to.side), to.channels));
        }
        split.images = images;
        split.shape = to;
    }
    Ok(dataset)
}

/// The classes and each image's label: a class per top-level subfolder, or none for a flat
/// folder; a folder with both is refused.
fn layout(paths: &[String]) -> Result<(Classes, Vec<u8>), String> {
    let top = |p: &String| p.split_once('/').map(|(dir, _)| dir.to_string());
    let nested = paths.iter().filter(|p| p.contains('/')).count();
    if nested == 0 {
        return Ok((Classes::Unlabelled, vec![0; paths.len()]));
    }
    if nested < paths.len() {
        let loose = paths.iter().find(|p| !p.contains('/')).expect("some image is loose");
        return Err(format!(
            "holds images both in subfolders (read as classes) and beside them ({loose}); put every image in its class's folder, or all in one flat folder"
        ));
    }
    let mut names: Vec<String> = paths.iter().filter_map(top).collect();
    names.sort();
    names.dedup();
    if names.len() > 256 {
        return Err(format!("has {} class folders; wgen takes at most 256", names.len()));
    }
    let labels = paths.iter().map(|p| names.binary_search(&top(p).expect("nested")).expect("a listed class") as u8).collect();
    Ok((Classes::Named(names), labels))
}

/// The side every image shares, from their headers; else a one-line request for --size.
fn shared_size(paths: &[String], read: &ReadImage<'_>) -> Result<usize, String> {
    let mut sizes = std::collections::BTreeMap::<(u32, u32), usize>::new();
    let mut first_error = None;
    for path in paths {
        match read(path).and_then(|bytes| reader(&bytes)?.into_dimensions().map_err(|e| e.to_string())) {
            Ok(dims) => *sizes.entry(dims).or_default() += 1,
            Err(why) => first_error = first_error.or(Some(format!("{path}: {why}"))),
        }
    }
    match sizes.keys().collect::<Vec<_>>()[..] {
        [] => Err(format!("none of its {} images could be read (the first: {})", paths.len(), first_error.unwrap_or_default())),
        [&(w, h)] if w == h => Ok(w as usize),
        _ => {
            let common: Vec<String> = sizes.iter().take(3).map(|((w, h), n)| format!("{n} at {w}×{h}")).collect();
            Err(format!("its images are not all one square size ({}); pass --size N to resize them to N×N", common.join(", ")))
        }
    }
}

pub(super) fn reader(bytes: &[u8]) -> Result<image::ImageReader<std::io::Cursor<&[u8]>>, String> {
    image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())
}

/// Every image composited, resized and cropped to side × side RGB, on every core.
fn decode_all(
    paths: &[String], read: &ReadImage<'_>, side: usize, options: &ImageOptions, progress: &mut dyn FnMut(usize, usize),
) -> Vec<Result<RgbImage, String>> {
    let decode = |path: &String| -> Result<RgbImage, String> {
        let bytes = read(path)?;
        let image = reader(&bytes)?.decode().map_err(|e| e.to_string())?;
        Ok(fit(composite(image, options.background.0), side))
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let mut out = Vec::with_capacity(paths.len());
    // Rounds of a few images per worker, so the progress moves.
    for round in paths.chunks(16 * workers) {
        if workers == 1 {
            out.extend(round.iter().map(decode));
        } else {
            let per = round.len().div_ceil(workers);
            std::thread::scope(|s| {
                let handles: Vec<_> = round.chunks(per).map(|part| s.spawn(|| part.iter().map(decode).collect::<Vec<_>>())).collect();
                out.extend(handles.into_iter().flat_map(|h| h.join().expect("a decoding thread ended")));
            });
        }
        progress(out.len(), paths.len());
    }
    out
}

/// RGB of an image whose transparent pixels are laid over `background`.
pub(super) fn composite(image: image::DynamicImage, background: [u8; 3]) -> RgbImage {
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        image::Rgb(std::array::from_fn(|c| ((u32::from(p[c]) * a + u32::from(background[c]) * (255 - a) + 127) / 255) as u8))
    })
}

/// Resized so its short side is `side` (the long one to torchvision's int(side · long /
/// short)), then the centre side × side (torchvision's CenterCrop offsets).
fn fit(rgb: RgbImage, side: usize) -> RgbImage {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (nw, nh) = if w <= h { (side, side * h / w) } else { (side * w / h, side) };
    let resized = if (nw, nh) == (w, h) { rgb } else { imageops::resize(&rgb, nw as u32, nh as u32, imageops::FilterType::Triangle) };
    let left = ((nw - side) as f64 / 2.0).round() as u32;
    let top = ((nh - side) as f64 / 2.0).round() as u32;
    imageops::crop_imm(&resized, left, top, side as u32, side as u32).to_image()
}

/// [channels, side, side] bytes: the R, G and B planes, or one grey plane (the pixels' own
/// value where grey, else luma by ITU-R 601, as PIL's convert("L")).
pub(super) fn planes(rgb: &RgbImage, channels: usize) -> Vec<u8> {
    if channels == 1 {
        return rgb.pixels().map(|p| ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000) >> 16) as u8).collect();
    }
    (0..3).flat_map(|c| rgb.pixels().map(move |p| p[c])).collect()
}

fn empty_split(shape: ImageShape) -> Split {
    Split { images: Vec::new(), labels: Vec::new(), count: 0, shape }
}

/// Refuses splits a run cannot use: a folder of one image, which gives no test image.
fn check_splits(train: &Split, test: &Split) -> Result<(), String> {
    if test.count == 0 {
        return Err(format!("its {} readable image leaves no test image to judge samples by; add images", train.count));
    }
    Ok(())
}
