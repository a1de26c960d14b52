//! Shared by the GPU tests: one device per test binary, seeded data, and a comparison that says
//! where and by how much a result is off.
#![allow(dead_code)]

use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use wgen::gpu::{Gpu, GpuOptions, Tensor};

/// The adapter wgen would pick (WGEN_ADAPTER narrows it). No adapter fails the test with the
/// install hint: CI installs lavapipe, so these never skip silently.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let options = GpuOptions {
            adapter: std::env::var("WGEN_ADAPTER").ok(),
            ..GpuOptions::default()
        };
        Gpu::new(&options).unwrap_or_else(|e| panic!("{e}"))
    })
}

pub fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

pub fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The values as the GPU sees them (rounded to f32), back in f64 for the reference.
pub fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x as f32)).collect()
}

pub fn upload(label: &str, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_slice(gpu(), label, shape, &f32s(v)).unwrap()
}

pub fn zeros(label: &str, shape: &[usize]) -> Tensor {
    Tensor::zeros(gpu(), label, shape).unwrap()
}

pub fn read(t: &Tensor) -> Vec<f32> {
    t.read(gpu()).unwrap()
}

/// |got - want| <= atol + rtol·|want| everywhere, else a failure naming the worst and the
/// first mismatching indices.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0usize, 0.0f64);
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = (f64::from(g) - w).abs();
        if diff.is_nan() || diff > atol + rtol * w.abs() {
            bad.push(i);
        }
        if diff.is_nan() || diff > worst.1 {
            worst = (i, diff);
        }
    }
    if !bad.is_empty() {
        let first: Vec<String> = bad.iter().take(5).map(|&i| format!("[{i}] got {} want {}", got[i], want[i])).collect();
        panic!(
            "{what}: {} of {} values off (atol {atol}, rtol {rtol}); max diff {} at [{}]; first: {}",
            bad.len(),
            got.len(),
            worst.1,
            worst.0,
            first.join(", ")
        );
    }
}

/// Writes an MNIST-format folder with the first `train` and `test` images of the built-in
/// data (gzip for the images, plain for the labels, as folders in the wild mix them).
pub fn small_mnist(dir: &std::path::Path, train: usize, test: usize) {
    use std::io::Write;
    let data = wgen::data::builtin();
    std::fs::create_dir_all(dir).unwrap();
    let idx = |dims: &[u32], payload: &[u8]| -> Vec<u8> {
        let mut out = (0x0800u32 | dims.len() as u32).to_be_bytes().to_vec();
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    };
    for (name, split, n) in [("train", &data.train, train), ("t10k", &data.test, test)] {
        let images = idx(&[n as u32, 28, 28], &split.images[..n * 784]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&images).unwrap();
        std::fs::write(dir.join(format!("{name}-images-idx3-ubyte.gz")), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join(format!("{name}-labels-idx1-ubyte")), idx(&[n as u32], &split.labels[..n])).unwrap();
    }
}

/// A fresh folder under the system's temp dir, unique per test, removed when the test passes
/// (a failed test's folder stays, to be looked at): runs, checkpoints and caches add up to
/// gigabytes over a few full test runs.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("wgen-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::PathBuf;

    fn deref(&self) -> &std::path::PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Encodes RGBA pixels [side, side, 4] as PNG bytes.
pub fn png_bytes(rgba: Vec<u8>, width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_raw(width, height, rgba).expect("width × height × 4 bytes");
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `n` opaque colour pictures side × side in `classes` class folders, each channel its own
/// pattern (so a mixed-up channel or plane shows): (relative path, PNG bytes), sorted by path.
pub fn colour_pictures(n: usize, side: u32, classes: usize) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let rgba = (0..side * side)
                .flat_map(|p| {
                    let (y, x, i) = (p / side, p % side, i as u32);
                    [(x * 37 + i * 11) as u8, (y * 23 + i * 29) as u8, ((x ^ y) * 41 + i * 7) as u8, 255]
                })
                .collect();
            (format!("class{}/{i:04}.png", i % classes), png_bytes(rgba, side, side))
        })
        .collect();
    out.sort();
    out
}

/// The data set of `colour_pictures`, decoded as a folder is.
pub fn colour_dataset(n: usize, side: u32, classes: usize) -> wgen::data::Dataset {
    dataset_of_files(&colour_pictures(n, side, classes))
}

/// Files (relative path, bytes) decoded as a folder of them is.
pub fn dataset_of_files(files: &[(String, Vec<u8>)]) -> wgen::data::Dataset {
    let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let read = |path: &str| Ok(files.iter().find(|(p, _)| p == path).expect("a listed file").1.clone());
    wgen::data::folder::from_images(&paths, &read, "files", &Default::default(), &mut |_, _| {}).unwrap()
}

/// 30 of the built-in training digits as grey PNGs in class folders of 1, 4 and 25 images
/// (`one/00.png`, `four/00.png`…, `many/00.png`…): a small folder with a class of one.
pub fn thirty_digits() -> Vec<(String, Vec<u8>)> {
    let digits = wgen::data::builtin();
    [("one", 1usize), ("four", 4), ("many", 25)]
        .into_iter()
        .scan(0usize, |at, (class, n)| {
            let first = *at;
            *at += n;
            Some((0..n).map(move |i| (format!("{class}/{i:02}.png"), first + i)))
        })
        .flatten()
        .map(|(path, i)| (path, png_bytes(digits.train.images[i * 784..(i + 1) * 784].iter().flat_map(|&v| [v, v, v, 255]).collect(), 28, 28)))
        .collect()
}

/// The `wgen` binary run with `args`; a panic fails the test whatever the exit.
pub fn wgen(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgen")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "wgen {args:?} panicked:\n{stderr}");
    out
}

/// `wgen args`, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = wgen(args);
    assert!(out.status.success(), "wgen {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `wgen args` must refuse with exit 1 and one error line containing `message`.
pub fn fails_with(args: &[&str], message: &str) {
    fails_with_code(args, 1, message);
}

/// `wgen args` must refuse with exit `code` (2: a flag clap rejects) and one line with `message`.
pub fn fails_with_code(args: &[&str], code: i32, message: &str) {
    let out = wgen(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(message), "{args:?}: expected `{message}` in: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one error line: {stderr}");
}
