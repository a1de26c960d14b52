//! A training split streamed from host memory through a ring of images on the GPU: each fed
//! row reads its own image (rows of bytes not a multiple of 4, the ring wrapping), a split
//! over the adapter's storage binding streams by itself, and a streamed run trains bit for bit
//! as the resident one.

mod common;

use std::process::Command;

use common::{colour_pictures, gpu, temp_dir};
use wgen::data::{self, DeviceSplit, ImageShape, Split};
use wgen::train::{upload_test, upload_training, TrainConfig};

/// 50 images of 13×13 bytes (169: rows straddle 4-byte words), each byte telling its image.
fn odd_split() -> Split {
    let shape = ImageShape { channels: 1, side: 13 };
    let images = (0..50).flat_map(|i| (0..shape.values()).map(move |p| (i * 5 + p % 3) as u8)).collect();
    Split { images, labels: (0..50).map(|i| (i % 7) as u8).collect(), count: 50, shape }
}

fn bytes_of(buffer: &wgpu::Buffer, len: usize) -> Vec<u8> {
    let words: Vec<u32> = gpu().read(buffer, 0, len.div_ceil(4)).unwrap();
    bytemuck::cast_slice(&words)[..len].to_vec()
}

#[test]
fn each_fed_row_reads_its_own_image_through_a_wrapping_ring_of_unaligned_rows() {
    let g = gpu();
    let split = odd_split();
    let (want_images, want_labels, v) = (split.images.clone(), split.labels.clone(), split.shape.values());
    let ring = DeviceSplit::for_training(g, split, 7, true).unwrap();
    assert_eq!(ring.streamed().map(|(window, _)| window), Some(7));
    let shuffle: Vec<u32> = (0..50).map(|k| (k * 17 + 3) % 50).collect();
    ring.set_order(g, &shuffle);
    // Submits of 3, 4 and 7 rows (the whole ring), one of them two batches apart (an epoch's
    // end and the next start, as the profile's steps can be): the ring wraps more than once.
    // Each submit's rows are a list of ranges, most of them one range.
    #[allow(clippy::single_range_in_vec_init)]
    let submits: [&[std::ops::Range<usize>]; 5] = [&[0..3], &[3..7], &[7..14], &[44..48, 0..3], &[20..27]];
    for rows in submits {
        ring.feed(g, rows);
        g.wait();
        let order: Vec<u32> = g.read(&ring.order.buffer, 0, 50).unwrap();
        let (pixels, labels) = (bytes_of(&ring.pixels.buffer, 7 * v), bytes_of(&ring.labels.buffer, 7));
        for k in rows.iter().cloned().flatten() {
            let (slot, image) = (order[k] as usize, shuffle[k] as usize);
            assert!(slot < 7, "row {k} points past the ring: slot {slot}");
            assert_eq!(pixels[slot * v..(slot + 1) * v], want_images[image * v..(image + 1) * v], "row {k} (image {image}, slot {slot})");
            assert_eq!(labels[slot], want_labels[image], "row {k}'s label");
        }
    }
}

#[test]
fn a_split_over_one_storage_binding_streams_by_itself_and_a_test_split_over_it_is_refused() {
    let dataset = data::builtin();
    let mut small = gpu().with_matmul(gpu().matmul);
    // 1 MiB: the 9,000 training digits (7 MB) and the 1,000 test digits (0.8 MB) straddle it.
    small.limits.max_storage_buffer_binding_size = 1 << 20;
    // Rings of two submits of 2 steps of 128 digits: 0.4 MB.
    let cfg = TrainConfig { steps_per_submit: 2, ..TrainConfig::defaults(wgen::train::ModelKind::Vae) };
    let resident = upload_training(gpu(), &cfg, data::builtin().train).unwrap();
    assert!(resident.streamed().is_none(), "the digits fit lavapipe's binding: uploaded whole");
    let streamed = upload_training(&small, &cfg, data::builtin().train).unwrap();
    assert_eq!(streamed.streamed().map(|(w, _)| w), Some(2 * cfg.steps_per_submit * cfg.batch), "two submits' batches");
    assert!(upload_test(&small, &dataset).is_ok(), "0.8 MB fits");
    small.limits.max_storage_buffer_binding_size = 1 << 19;
    let refusal = format!("{:#}", upload_test(&small, &dataset).err().expect("0.8 MB over 0.5 MB"));
    assert!(refusal.contains("does not fit one storage binding") && refusal.contains("--size") && !refusal.contains('\n'), "{refusal}");
}

#[test]
fn a_streamed_run_trains_bit_for_bit_as_the_resident_one() {
    let dir = temp_dir("streaming-cli");
    let data = dir.join("pictures");
    for (path, bytes) in colour_pictures(90, 12, 3) {
        std::fs::create_dir_all(data.join(&path).parent().unwrap()).unwrap();
        std::fs::write(data.join(path), bytes).unwrap();
    }
    // 11×11 colour: 363 bytes an image, so ring slots straddle words; 2 steps a submit in a
    // 4-step epoch of batch 16, so the ring (64 images) wraps within each epoch.
    let train = |name: &str, extra: &[&str]| {
        let out_dir = dir.join(name);
        let mut args = vec!["train", "vae", "--conditional", "--data", data.to_str().unwrap(), "--size", "11", "--epochs", "3", "--batch", "16"];
        args.extend(["--steps-per-submit", "2", "--seed", "4", "--out", out_dir.to_str().unwrap()]);
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_wgen")).args(&args).env("XDG_CACHE_HOME", dir.join("cache")).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).to_string(), std::fs::read(out_dir.join("model.safetensors")).unwrap())
    };
    // The profile's submits of 16 steps span epochs of 4 here: more rows than the 81 images.
    let out = Command::new(env!("CARGO_BIN_EXE_wgen"))
        .args(["profile", "vae", "--data", data.to_str().unwrap(), "--size", "11", "--batch", "16", "--steps", "20", "--stream"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap();
    let says = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && says.contains("data: streamed"), "{says}{}", String::from_utf8_lossy(&out.stderr));
    let (resident_says, resident) = train("resident", &[]);
    let (streamed_says, streamed) = train("streamed", &["--stream"]);
    assert!(!resident_says.contains("streaming the"), "{resident_says}");
    assert!(streamed_says.contains("streaming the") && streamed_says.contains("as --stream asks") && streamed_says.contains("ring of 64 images"), "{streamed_says}");
    let (resident, streamed) = (safetensors::SafeTensors::deserialize(&resident).unwrap(), safetensors::SafeTensors::deserialize(&streamed).unwrap());
    let names = |t: &safetensors::SafeTensors| {
        let mut names: Vec<String> = t.names().into_iter().map(str::to_string).collect();
        names.sort();
        names
    };
    assert!(resident.len() > 4 && names(&resident) == names(&streamed));
    for (name, tensor) in resident.tensors() {
        assert!(tensor.data() == streamed.tensor(&name).unwrap().data(), "{name}: the streamed run's weights differ from the resident run's");
    }
    let losses = |says: &str| says.lines().filter(|l| l.starts_with("epoch")).map(|l| l.split("img/s").next().unwrap().trim_end().rsplit_once(" ").unwrap().0.trim_end().to_string()).collect::<Vec<_>>();
    assert_eq!(losses(&resident_says), losses(&streamed_says));
}
