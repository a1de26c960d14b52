//! Folders of images as data sets: the same tensors as the IDX files of the same digits, the
//! resize, crop, background and channels a user asks for, the cache, and every bad input
//! refused or skipped in one line.

mod common;

use std::path::Path;
use std::process::Command;

use common::{colour_pictures, png_bytes, temp_dir, thirty_digits};
use wgen::data::{self, folder, Background, Classes, ImageOptions, ImageShape};

fn load(dir: &Path, options: &ImageOptions) -> Result<data::Dataset, data::DataError> {
    // One cache folder for this test binary, never the user's.
    std::env::set_var("XDG_CACHE_HOME", std::env::temp_dir().join(format!("wgen-test-folders-cache-{}", std::process::id())));
    data::load(Some(dir), options, &mut |_, _| {})
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (path, bytes) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
}

fn grey_png(pixels: &[u8], side: u32) -> Vec<u8> {
    png_bytes(pixels.iter().flat_map(|&v| [v, v, v, 255]).collect(), side, side)
}

/// Images of one colour, side × side, RGBA.
fn plain(rgba: [u8; 4], width: u32, height: u32) -> Vec<u8> {
    png_bytes(rgba.iter().copied().cycle().take((width * height * 4) as usize).collect(), width, height)
}

#[test]
fn folder_of_png_digits_gives_the_idx_digits_tensors_split_by_path_hash() {
    assert_folder_gives_the_idx_tensors("folder-digits", &data::builtin());
}

/// Debian's dataset-fashion-mnist (.ci/run and the README's test command install it).
#[test]
fn folder_of_png_fashion_mnist_gives_its_idx_tensors() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let fashion = data::load(Some(dir), &ImageOptions::default(), &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"));
    assert_eq!(fashion.train.count, 60_000, "{}", fashion.source);
    assert_folder_gives_the_idx_tensors("folder-fashion", &fashion);
}

/// The first 1,000 training images of `idx` written as grey PNGs in label folders read back as
/// those images and labels, each in the split the hash of its path gives.
fn assert_folder_gives_the_idx_tensors(name: &str, idx: &data::Dataset) {
    let dir = temp_dir(name);
    // 1,000: with 400, one Fashion-MNIST class of 40 had no image hashed to the test split.
    let n = 1000;
    let mut files = Vec::new();
    for i in 0..n {
        let image = &idx.train.images[i * 784..(i + 1) * 784];
        files.push((format!("{}/{i:05}.png", idx.train.labels[i]), grey_png(image, 28), i));
    }
    write_all(&dir, &files.iter().map(|(p, b, _)| (p.clone(), b.clone())).collect::<Vec<_>>());
    let got = load(&dir, &ImageOptions::default()).unwrap();
    assert_eq!(got.shape(), ImageShape::MNIST, "grey 28×28 PNGs are MNIST's shape");
    assert_eq!(got.classes, Classes::Named((0..10).map(|d| d.to_string()).collect()));
    // The expected splits: files in path order, one in ten by the hash of its path to test.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
    let labels: Vec<u8> = files.iter().map(|(_, _, i)| idx.train.labels[*i]).collect();
    let to_test = folder::test_images(&paths, &labels);
    assert_eq!(to_test.iter().zip(&paths).filter(|(t, p)| **t != wgen_hash_test(p)).count(), 0, "classes this large split by the hash alone");
    for (split, test) in [(&got.train, false), (&got.test, true)] {
        let want: Vec<usize> = files.iter().zip(&to_test).filter(|(_, &t)| t == test).map(|((_, _, i), _)| *i).collect();
        assert_eq!(split.count, want.len(), "test split {test}");
        for (k, &i) in want.iter().enumerate() {
            assert_eq!(split.images[k * 784..(k + 1) * 784], idx.train.images[i * 784..(i + 1) * 784], "image {i}");
            assert_eq!(split.labels[k], idx.train.labels[i], "label of image {i}");
        }
    }
    assert!((60..=140).contains(&got.test.count), "about a tenth are test images: {}", got.test.count);
}

#[test]
fn the_dcgan_of_pytorch_examples_trains_at_its_rates_unless_they_are_given() {
    use wgen::train::{shape_to, ModelKind, Settings};
    let rates = |side: u32, lr: Option<f32>, d_lr: Option<f32>| {
        let mut cfg = Settings { model: Some(ModelKind::Dcgan), lr, d_lr, ..Settings::default() }.build().unwrap();
        shape_to(&mut cfg, &common::colour_dataset(90, side, 3), false).unwrap();
        (cfg.adam.lr, cfg.gan.unwrap().d_lr)
    };
    // 28 × 28 keeps the digits' recipe (G 4e-4, D 2e-5); 32 and 64 are pytorch/examples'.
    assert_eq!(rates(28, None, None), (4e-4, Some(2e-5)));
    assert_eq!(rates(32, None, None), (2e-4, Some(2e-4)));
    assert_eq!(rates(64, None, None), (2e-4, Some(2e-4)));
    assert_eq!(rates(32, Some(1e-4), None), (1e-4, Some(2e-4)), "a given --lr stays");
    assert_eq!(rates(32, None, Some(3e-5)), (2e-4, Some(3e-5)), "a given --d-lr stays");
}

#[test]
fn a_spread_of_a_class_by_class_split_takes_every_class_alike() {
    // 3 classes of 30, one after another as a folder's split runs; each image's bytes its index.
    let shape = ImageShape { channels: 1, side: 2 };
    let split = data::Split { images: (0..90u8).flat_map(|i| [i; 4]).collect(), labels: (0..90).map(|i| i / 30).collect(), count: 90, shape };
    let picked: Vec<u8> = split.spread_floats(45).chunks(4).map(|image| (image[0] * 255.0).round() as u8).collect();
    assert_eq!(picked.len(), 45);
    for class in 0..3 {
        assert_eq!(picked.iter().filter(|&&i| i / 30 == class).count(), 15, "class {class} of {picked:?}");
    }
    assert_eq!(split.spread_floats(500), split.unit_floats(), "more than the split: all of it");
}

#[test]
fn colour_images_are_cropped_on_their_short_side_centred_and_stored_as_planes() {
    let dir = temp_dir("folder-crop");
    // 40 wide, 20 high: red outer quarters, green middle half; resized to 20×10 and cropped to
    // the middle 10×10, all green. And a picture whose planes differ, at its own size.
    let mut wide = Vec::new();
    for _y in 0..20 {
        for x in 0..40 {
            wide.extend(if (10..30).contains(&x) { [0, 255, 0, 255] } else { [255, 0, 0, 255] });
        }
    }
    let files: Vec<(String, Vec<u8>)> = (0..30).map(|i| (format!("{i:02}.png"), png_bytes(wide.clone(), 40, 20))).collect();
    write_all(&dir, &files);
    let got = load(&dir, &ImageOptions { size: Some(10), ..ImageOptions::default() }).unwrap();
    assert_eq!(got.shape(), ImageShape { channels: 3, side: 10 });
    assert_eq!(got.classes, Classes::Unlabelled, "a flat folder is unlabelled");
    let image = &got.train.images[..300];
    let (red, green, blue) = (&image[..100], &image[100..200], &image[200..]);
    // The crop's edge columns are 1-2 resized pixels from the red: the triangle filter, two
    // resized pixels wide, blends them in a little; the centre is pure.
    assert!(green.iter().all(|&g| g >= 190), "green plane {green:?}");
    assert!(red.iter().all(|&r| r <= 65) && blue.iter().all(|&b| b == 0), "red {red:?} blue {blue:?}");
    assert_eq!((red[55], green[55]), (0, 255), "the centre pixel");

    let planes = colour_pictures(1, 6, 1).pop().unwrap().1;
    let rgba = image::load_from_memory(&planes).unwrap().to_rgba8();
    let dir = temp_dir("folder-planes");
    write_all(&dir, &(0..20).map(|i| (format!("{i:02}.png"), planes.clone())).collect::<Vec<_>>());
    let got = load(&dir, &ImageOptions::default()).unwrap();
    assert_eq!(got.shape(), ImageShape { channels: 3, side: 6 }, "the size every image shares");
    for (c, plane) in got.train.images[..108].chunks(36).enumerate() {
        let want: Vec<u8> = rgba.pixels().map(|p| p[c]).collect();
        assert_eq!(plane, &want[..], "plane {c} is channel {c} of the pixels, row-major");
    }
}

#[test]
fn transparency_is_laid_over_the_background_and_channels_follow_the_images_unless_asked() {
    let dir = temp_dir("folder-alpha");
    // Half-transparent red and fully transparent pixels, 8×8.
    let files: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("{i:02}.png"), plain(if i % 2 == 0 { [255, 0, 0, 128] } else { [9, 9, 9, 0] }, 8, 8))).collect();
    write_all(&dir, &files);
    let black = load(&dir, &ImageOptions::default()).unwrap();
    let white = load(&dir, &ImageOptions { background: "white".parse().unwrap(), ..ImageOptions::default() }).unwrap();
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let to_test = folder::test_images(&paths, &[0; 20]);
    let is_test = |path: &str| to_test[paths.iter().position(|p| *p == path).unwrap()];
    let first = |d: &data::Dataset, path: &str| -> Vec<u8> {
        let k = files.iter().filter(|(p, _)| !is_test(p)).position(|(p, _)| p == path).unwrap();
        let v = d.shape().values();
        d.train.images[k * v..(k + 1) * v].to_vec()
    };
    let train_path = |even: bool| files.iter().map(|(p, _)| p.clone()).find(|p| !is_test(p) && (p[..2].parse::<u32>().unwrap() % 2 == 0) == even).unwrap();
    let (half, clear) = (train_path(true), train_path(false));
    // (255·128 + 0·127 + 127) / 255 = 128 on black; + 255·127 on white.
    assert_eq!([first(&black, &half)[0], first(&black, &half)[64], first(&black, &half)[128]], [128, 0, 0]);
    assert_eq!([first(&white, &half)[0], first(&white, &half)[64], first(&white, &half)[128]], [255, 127, 127]);
    assert!(first(&black, &clear).iter().all(|&v| v == 0) && first(&white, &clear).iter().all(|&v| v == 255));

    let grey = load(&dir, &ImageOptions { channels: Some(1), ..ImageOptions::default() }).unwrap();
    assert_eq!(grey.shape().channels, 1);
    // ITU-R 601 luma of (128, 0, 0): 128 · 0.299 = 38.3.
    assert_eq!(first(&grey, &half)[0], 38);

    let greys = temp_dir("folder-greys");
    write_all(&greys, &(0..20).map(|i| (format!("{i:02}.png"), plain([i * 10, i * 10, i * 10, 255], 8, 8))).collect::<Vec<_>>());
    assert_eq!(load(&greys, &ImageOptions::default()).unwrap().shape().channels, 1, "grey pixels, though stored as RGBA: one channel");
    assert_eq!(load(&greys, &ImageOptions { channels: Some(3), ..ImageOptions::default() }).unwrap().shape().channels, 3);
}

#[test]
fn a_corrupt_image_is_named_and_left_out_and_the_cache_serves_the_next_load() {
    let dir = temp_dir("folder-corrupt");
    let mut files = colour_pictures(40, 8, 2);
    files.push(("class1/broken.png".into(), b"\x89PNG\r\n\x1a\nnot really".to_vec()));
    files.push(("class0/notes.txt".into(), b"not an image".to_vec()));
    files.push(("class0/.hidden.png".into(), b"a hidden file".to_vec()));
    write_all(&dir, &files);
    let before = snapshot(&dir);
    let first = load(&dir, &ImageOptions::default()).unwrap();
    assert_eq!(snapshot(&dir), before, "the folder is only read");
    assert_eq!(first.skipped.len(), 1, "{:?}", first.skipped);
    assert!(first.skipped[0].contains("class1/broken.png"), "{}", first.skipped[0]);
    assert_eq!(first.train.count + first.test.count, 40);
    // Garbage of the same byte count and modification time: the cache, keyed by both, still
    // serves the old picture; a new time makes the folder new, decoded afresh.
    let file = dir.join("class0/0000.png");
    let (time, bytes) = (std::fs::metadata(&file).unwrap().modified().unwrap(), std::fs::read(&file).unwrap());
    std::fs::write(&file, bytes.iter().map(|b| !b).collect::<Vec<u8>>()).unwrap();
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(time).unwrap();
    let cached = load(&dir, &ImageOptions::default()).unwrap();
    assert_eq!(cached.fingerprint(), first.fingerprint(), "the second load reads the cache");
    assert_eq!((&cached.classes, &cached.skipped), (&first.classes, &first.skipped));
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(time + std::time::Duration::from_secs(1)).unwrap();
    assert_ne!(load(&dir, &ImageOptions::default()).unwrap().fingerprint(), first.fingerprint(), "a changed file is decoded afresh");
}

/// Every file under `dir`: its path, bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap(), std::fs::metadata(&path).unwrap().modified().unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn folders_a_run_cannot_use_are_refused_in_one_line_saying_what_to_do() {
    let refused = |name: &str, files: Vec<(String, Vec<u8>)>, options: ImageOptions| -> String {
        let dir = temp_dir(name);
        write_all(&dir, &files);
        load(&dir, &options).err().unwrap_or_else(|| panic!("{name} was accepted")).to_string()
    };
    let opts = ImageOptions::default();
    let empty = refused("folder-empty", vec![("readme.txt".into(), b"no images".to_vec())], opts);
    assert!(empty.contains("holds no images"), "{empty}");
    let mut mixed = colour_pictures(30, 8, 2);
    mixed.push(("loose.png".into(), mixed[0].1.clone()));
    let mixed = refused("folder-mixed", mixed, opts);
    assert!(mixed.contains("both in subfolders") && mixed.contains("loose.png"), "{mixed}");
    let broken = refused("folder-broken", vec![("a.png".into(), b"garbage".to_vec()), ("b.jpg".into(), b"more".to_vec())], opts);
    assert!(broken.contains("none of its 2 images could be read"), "{broken}");
    let sizes: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("{i}.png"), plain([0, 0, 0, 255], 8 + i % 2, 8))).collect();
    let sizes = refused("folder-sizes", sizes, opts);
    assert!(sizes.contains("pass --size N"), "{sizes}");
    let one = refused("folder-one", colour_pictures(1, 8, 1).into_iter().map(|(p, b)| (p.replace('/', "-"), b)).collect(), opts);
    assert!(one.contains("leaves no test image"), "{one}");
    for bad in [ImageOptions { size: Some(2), ..opts }, ImageOptions { channels: Some(2), ..opts }] {
        let message = refused("folder-options", colour_pictures(20, 8, 1), bad);
        assert!(message.contains("--size") || message.contains("--channels"), "{message}");
    }
    // A link back up the tree is refused, not followed for ever.
    let looped = temp_dir("folder-loop");
    write_all(&looped, &colour_pictures(20, 8, 2));
    std::os::unix::fs::symlink(&looped, looped.join("class0/again")).unwrap();
    let message = load(&looped, &opts).err().expect("a looping folder is refused").to_string();
    assert!(message.contains("nested more than 32 deep"), "{message}");
    assert!("#12345".parse::<Background>().is_err() && "#0a0B0c".parse::<Background>() == Ok(Background([10, 11, 12])));
}

#[test]
fn wgen_trains_on_a_colour_folder_writes_colour_grids_and_refuses_bad_folders_in_one_line() {
    let dir = temp_dir("folder-cli");
    let data = dir.join("pictures");
    write_all(&data, &colour_pictures(90, 12, 3));
    let cache = dir.join("cache");
    let wgen = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wgen")).args(args).env("XDG_CACHE_HOME", &cache).current_dir(&dir).output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{args:?} panicked");
        out
    };
    for model in ["vae", "dcgan"] {
        let run = dir.join(model);
        let out = wgen(&["train", model, "--data", data.to_str().unwrap(), "--epochs", "1", "--batch", "16", "--out", run.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("no classifier yet") && stdout.contains("--eval-every"), "{model} says why samples are not scored:\n{stdout}");
        let grid = image::open(run.join("samples/epoch-001.png")).unwrap();
        assert_eq!(grid.color(), image::ColorType::Rgb8, "{model}: a colour grid");
        let out = wgen(&["sample", run.join("model.safetensors").to_str().unwrap(), "--n", "5", "--raw", dir.join("raw.f32").to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::metadata(dir.join("raw.f32")).unwrap().len(), 5 * 3 * 12 * 12 * 4, "[5, 3, 12, 12] f32");
    }
    // Reconstructions of the run's own test pictures, found through its config.json.
    let recon = dir.join("recon.png");
    let out = wgen(&["sample", dir.join("vae/model.safetensors").to_str().unwrap(), "--recon", "--grid", recon.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(image::open(&recon).unwrap().color(), image::ColorType::Rgb8);
    // Eval trains a classifier for the folder's 3 classes once, on 12×12 colour.
    let out = wgen(&["eval", dir.join("dcgan").to_str().unwrap(), "--samples", "200"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("training one") && stdout.contains("classes ≥5%:") && stdout.contains("/3"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("dcgan/eval.json")).unwrap()).unwrap();
    assert_eq!(report["samples"]["class_shares"].as_array().map(Vec::len), Some(3), "{report}");
    // Without a model, the data at their own shape: the same pictures, the same classifier.
    let out = wgen(&["eval", "--calibrate", "--data", data.to_str().unwrap(), "--samples", "50"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !stdout.contains("training one") && stdout.contains("/3"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));

    // A flat folder: nothing to judge by, said once; a VAE's likelihood is still measured.
    let flat = dir.join("flat");
    write_all(&flat, &colour_pictures(40, 8, 1).into_iter().map(|(p, b)| (p.replace('/', "-"), b)).collect::<Vec<_>>());
    let run = dir.join("flat-vae");
    let out = wgen(&["train", "vae", "--data", flat.to_str().unwrap(), "--epochs", "1", "--batch", "8", "--out", run.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("is unlabelled"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = wgen(&["eval", run.to_str().unwrap(), "--iw-samples", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("is unlabelled") && stdout.contains("IWAE bound"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for (args, says) in [
        (vec!["train", "vae", "--data", empty.to_str().unwrap()], "holds no images"),
        (vec!["train", "conv-vae", "--data", data.to_str().unwrap(), "--size", "10", "--batch", "16"], "multiples of 4"),
        (vec!["train", "vae", "--data", data.to_str().unwrap(), "--channels", "2"], "--channels must be 1"),
        (vec!["train", "classifier", "--data", flat.to_str().unwrap(), "--batch", "8"], "learns from labels"),
        (vec!["train", "gan", "--conditional", "--data", flat.to_str().unwrap(), "--batch", "8"], "needs labels"),
    ] {
        let out = wgen(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: one line:\n{stderr}");
    }
}

#[test]
fn every_class_of_two_or_more_images_keeps_a_test_image_and_one_of_one_only_trains() {
    // Paths whose hash alone would put them in the test split, and paths it would not: a
    // class of two images from each kind.
    let picked = |class: &str, test: bool| -> Vec<String> {
        (0..).map(|i| format!("{class}/{i}.png")).filter(|p| wgen_hash_test(p) == test).take(2).collect()
    };
    let (none, all) = (picked("none", false), picked("all", true));
    let lone = vec!["lone/0.png".to_string()];
    let many: Vec<String> = (0..40).map(|i| format!("many/{i}.png")).collect();
    let paths: Vec<&str> = none.iter().chain(&all).chain(&lone).chain(&many).map(String::as_str).collect();
    let labels: Vec<u8> = [0, 0, 1, 1, 2].into_iter().chain(std::iter::repeat_n(3, 40)).collect();
    let test = folder::test_images(&paths, &labels);
    let count = |class: u8, want: bool| (0..paths.len()).filter(|&i| labels[i] == class && test[i] == want).count();
    assert_eq!((count(0, true), count(0, false)), (1, 1), "a class of two, neither hashed to the test split, gives it one");
    assert_eq!((count(1, true), count(1, false)), (1, 1), "a class of two, both hashed to the test split, trains on one");
    assert_eq!((count(2, true), count(2, false)), (0, 1), "a class of one image only trains");
    let hashed = many.iter().filter(|p| wgen_hash_test(p)).count();
    assert!(hashed > 0 && count(3, true) == hashed, "a large class splits by the hash alone");
    // A flat folder is one class: it keeps a test image however few its images.
    let flat: Vec<String> = (0..).map(|i| format!("{i}.png")).filter(|p| !wgen_hash_test(p)).take(3).collect();
    let flat: Vec<&str> = flat.iter().map(String::as_str).collect();
    assert_eq!(folder::test_images(&flat, &[0; 3]).iter().filter(|&&t| t).count(), 1, "a flat folder of 3");
}

/// The hash rule alone, one in ten: a class of 40 such images is split by it unchanged.
fn wgen_hash_test(path: &str) -> bool {
    use sha2::{Digest, Sha256};
    u64::from_le_bytes(Sha256::digest(path.as_bytes())[..8].try_into().unwrap()) % folder::TEST_ONE_IN == 0
}

#[test]
fn limit_keeps_n_images_spread_over_the_classes_a_small_class_all_it_has_the_rest_evenly_spaced() {
    // Classes of 1, 4 and 25 images, one after another; each image's bytes its index.
    let shape = ImageShape { channels: 1, side: 2 };
    let labels: Vec<u8> = [(0u8, 1), (1, 4), (2, 25)].iter().flat_map(|&(l, n)| vec![l; n]).collect();
    let split = data::Split { images: (0..30u8).flat_map(|i| [i; 4]).collect(), labels, count: 30, shape };
    let kept = split.spread_over_classes(9);
    let indices: Vec<u8> = kept.images.chunks(4).map(|image| image[0]).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5, 11, 17, 23], "the class of one, all four, then 4 of 25 evenly spaced");
    assert_eq!(kept.labels, [0, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!((kept.count, kept.shape), (9, shape));
    let all = split.spread_over_classes(100);
    assert_eq!((all.images, all.labels, all.count), (split.images.clone(), split.labels.clone(), 30), "more than the split: all of it");
}

#[test]
fn a_folder_of_thirty_digits_in_classes_of_1_4_and_25_trains_every_generative_model_with_only_data_given() {
    let dir = temp_dir("folder-small");
    let data = dir.join("digits");
    let files = thirty_digits();
    write_all(&data, &files);
    let dataset = load(&data, &ImageOptions::default()).unwrap();
    assert_eq!(dataset.train.count + dataset.test.count, 30);
    // The split scripts/torch_folder.py's test_images picks for the same paths.
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let labels: Vec<u8> = paths.iter().map(|p| if p.starts_with("one") { 2 } else if p.starts_with("four") { 0 } else { 1 }).collect();
    let picked: Vec<&str> = folder::test_images(&paths, &labels).into_iter().zip(&paths).filter(|t| t.0).map(|t| *t.1).collect();
    assert_eq!(picked, ["four/03.png", "many/04.png", "many/12.png"]);
    assert_eq!(dataset.test.count, 3);
    assert_eq!(dataset.untested_classes(), vec!["class one has 1 image: it trains, and no test image scores it".to_string()]);
    for model in ["gan", "dcgan", "vae"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wgen"))
            .args(["train", model, "--data", data.to_str().unwrap()])
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .current_dir(&dir)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{model}: {stderr}");
        let train = dataset.train.count;
        assert!(stdout.contains("class one has 1 image: it trains"), "{model} names the class of one:\n{stdout}");
        assert!(stdout.contains(&format!("batch {train}: the {train} training images")), "{model} says its batch shrank:\n{stdout}");
        assert!(dir.join(format!("runs/{model}-1/model.safetensors")).exists(), "{model}: a model file");
    }
    // --limit trains on part of the training split; the batch fits what is kept.
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_wgen")).args(args).env("XDG_CACHE_HOME", dir.join("cache")).current_dir(&dir).output().unwrap();
    let out = run(&["train", "gan", "--data", data.to_str().unwrap(), "--limit", "12", "--epochs", "1", "--out", "limited"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains(&format!("training on 12 of the {} training images", dataset.train.count)), "{stdout}");
    assert!(stdout.contains("batch 12: the 12 training images"), "{stdout}");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("limited/config.json")).unwrap()).unwrap();
    assert_eq!((config["train_images"].as_u64(), config["test_images"].as_u64()), (Some(12), Some(3)));
    let out = run(&["train", "gan", "--data", data.to_str().unwrap(), "--limit", "0"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--limit keeps N of the training images"));
    // A conditional model keeps the folder's class names: a class is asked for by name, and
    // eval shows each class's share under its name.
    let out = run(&["train", "gan", "--conditional", "--data", data.to_str().unwrap(), "--epochs", "1", "--out", "named"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = dir.join("named/model.safetensors");
    let m = model.to_str().unwrap();
    let out = run(&["sample", m, "--class", "many", "--n", "2", "--raw", "many.f32"]);
    assert!(out.status.success() && dir.join("many.f32").metadata().unwrap().len() == 2 * 784 * 4, "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["sample", m, "--class", "none-such"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("knows classes four, many, one (or 0–2)") && stderr.trim().lines().count() == 1, "{stderr}");
    assert!(run(&["train", "classifier", "--data", data.to_str().unwrap(), "--epochs", "1", "--out", "judge"]).status.success());
    let out = run(&["eval", "named", "--samples", "30", "--classifier", "judge/model.safetensors"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("[four:") && stdout.contains(" many:") && stdout.contains(" one:"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("named/eval.json")).unwrap()).unwrap();
    assert_eq!(report["class_names"], serde_json::json!(["four", "many", "one"]));
    // A batch the user gave is not changed but refused.
    let out = Command::new(env!("CARGO_BIN_EXE_wgen")).args(["train", "gan", "--data", data.to_str().unwrap(), "--batch", "64"]).env("XDG_CACHE_HOME", dir.join("cache")).current_dir(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--batch 64 is larger than the") && stderr.trim().lines().count() == 1, "{stderr}");
}
