//! The evaluation's numbers: the Fréchet distance and Inception Score on known answers, the
//! classifier it rests on, and the VAE's ELBO as PyTorch would compute it.

mod common;

const IMAGE: usize = wgen::data::ImageShape::MNIST.values();
use common::{gpu, small_mnist, temp_dir};
use nalgebra::{DMatrix, DVector};
use wgen::data::{self, DeviceSplit};
use wgen::eval::{class_shares, effective_classes, frechet_distance, frechet_from_moments, inception_score, vae_scores};
use wgen::models::vae::{layers, Vae, VaeConfig, STREAM_EVAL_EPS};
use wgen::models::ParamLayout;
use wgen::reference as cpu;
use wgen::eval::eval_chunks;
use wgen::train::{train, ModelKind, Silent, TrainConfig};

#[test]
fn frechet_distance_matches_closed_forms_for_gaussians() {
    // Same eigenbasis, eigenvalues (1, 4) and (9, 16): tr = 5 + 25 - 2(3 + 8) = 8, plus |Δμ|² = 5.
    let r = DMatrix::from_row_slice(2, 2, &[0.6, -0.8, 0.8, 0.6]);
    let s1 = &r * DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 4.0])) * r.transpose();
    let s2 = &r * DMatrix::from_diagonal(&DVector::from_vec(vec![9.0, 16.0])) * r.transpose();
    let (m1, m2) = (DVector::from_vec(vec![1.0, 2.0]), DVector::from_vec(vec![2.0, 0.0]));
    let fd = frechet_from_moments(&m1, &s1, &m2, &s2);
    assert!((fd - 13.0).abs() < 1e-9, "{fd}");
    // Non-commuting covariances: FD is symmetric and zero only between equal Gaussians.
    let s3 = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
    assert!((frechet_from_moments(&m1, &s1, &m2, &s3) - frechet_from_moments(&m2, &s3, &m1, &s1)).abs() < 1e-9);
    assert!(frechet_from_moments(&m1, &s3, &m1, &s3).abs() < 1e-9);
    // A covariance that is not a number gives an FD that is not one, never the bare traces.
    let broken = DMatrix::from_row_slice(2, 2, &[2.0, f64::NAN, f64::NAN, 1.0]);
    assert!(frechet_from_moments(&m1, &s1, &m2, &broken).is_nan());
    // From samples: a set against itself is 0; shifted by 3 in every one of 4 dimensions, 36.
    let x: Vec<f64> = common::uniform(3, 4000 * 4, -1.0, 1.0);
    let shifted: Vec<f64> = x.iter().map(|v| v + 3.0).collect();
    assert!(frechet_distance(&x, &x, 4).abs() < 1e-9);
    assert!((frechet_distance(&x, &shifted, 4) - 36.0).abs() < 1e-6);
}

/// `rows` rows of `live` correlated non-negative features, as a judge's ReLU layer gives them.
fn relu_features(seed: u64, rows: usize, live: usize) -> Vec<f64> {
    let mixing = common::uniform(seed, live * live, -1.0, 1.0);
    let noise = common::uniform(seed + 1, rows * live, -1.0, 1.0);
    (0..rows).flat_map(|r| (0..live).map(|j| (0..live).map(|k| mixing[j * live + k] * noise[r * live + k]).sum::<f64>().max(0.0)).collect::<Vec<_>>()).collect()
}

/// `x`'s rows of `live` features spread over `width` columns, the others zero for every row:
/// column c is zero where 7c mod width < width - live (scattered; 7 is prime to the widths used).
fn with_dead_columns(x: &[f64], live: usize, width: usize) -> Vec<f64> {
    x.chunks(live)
        .flat_map(|row| {
            let mut next = row.iter();
            (0..width).map(move |c| if (7 * c) % width < width - live { 0.0 } else { *next.next().unwrap() })
        })
        .collect()
}

#[test]
fn frechet_distance_leaves_out_only_features_zero_in_both_sets() {
    // The emoji judge's shape: 169 of 256 features dead (zero for every image), 3,000 samples
    // against 365 test images; one more feature is zero in the samples only, which must count.
    // A dead feature adds nothing to a covariance or mean, so the FD is that of the others.
    let (a, mut b) = (relu_features(7, 3000, 88), relu_features(8, 365, 88));
    for row in b.chunks_mut(88) {
        row[87] = row[87] * 1.1 + 0.5;
    }
    let a: Vec<f64> = a.chunks(88).flat_map(|r| r[..87].iter().copied().chain([0.0])).collect();
    let want = frechet_distance(&a, &b, 88);
    let fd = frechet_distance(&with_dead_columns(&a, 88, 256), &with_dead_columns(&b, 88, 256), 256);
    assert!(want.is_finite() && want > 0.0, "{want}");
    assert!((fd - want).abs() < 1e-6 * want, "FD with dead features {fd}, without them {want}");
    let first_87 = |x: &[f64]| x.chunks(88).flat_map(|r| r[..87].to_vec()).collect::<Vec<_>>();
    let without = frechet_distance(&first_87(&a), &first_87(&b), 87);
    assert!(want - without > 0.1, "the feature live in one set only adds to the FD: {want} against {without} without it");
}

#[test]
fn inception_score_and_coverage_on_known_distributions() {
    let uniform = vec![0.1; 100 * 10];
    assert!((inception_score(&uniform, 10) - 1.0).abs() < 1e-12, "uncertain predictions score 1");
    let spread: Vec<f64> = (0..100).flat_map(|i| (0..10).map(move |c| f64::from(u8::from(c == i % 10)))).collect();
    assert!((inception_score(&spread, 10) - 10.0).abs() < 1e-9, "confident and balanced over 10 classes scores 10");
    let collapsed: Vec<f64> = (0..100).flat_map(|_| (0..10).map(|c| f64::from(u8::from(c == 3)))).collect();
    assert!((inception_score(&collapsed, 10) - 1.0).abs() < 1e-12, "one class scores 1");
    assert_eq!(class_shares(&collapsed, 10)[3], 1.0);
    assert!(class_shares(&spread, 10).iter().all(|&s| (s - 0.1).abs() < 1e-12));
}

#[test]
fn effective_classes_is_ten_for_even_shares_one_for_one_class_and_falls_with_a_weak_class() {
    assert!((effective_classes(&[0.1; 10]) - 10.0).abs() < 1e-12);
    assert!((effective_classes(&[0.0, 1.0, 0.0]) - 1.0).abs() < 1e-12, "empty classes count nothing");
    // ½, ¼, ¼: entropy 1.5 ln 2, so 2^1.5 classes.
    assert!((effective_classes(&[0.5, 0.25, 0.25]) - 2f64.powf(1.5)).abs() < 1e-12);
    // Nine classes at 10.5% and one at 5.5% are all "≥ 5%", yet fewer than ten even ones.
    let weak: Vec<f64> = std::iter::repeat_n(0.105, 9).chain([0.055]).collect();
    let e = effective_classes(&weak);
    assert!(e < 9.95 && e > 9.5, "{e}");
}

#[test]
fn the_classifier_learns_the_digits() {
    let dir = temp_dir("classifier");
    small_mnist(&dir.join("data"), 3000, 500);
    let mut cfg = TrainConfig::defaults(ModelKind::Classifier);
    cfg.epochs = 2;
    cfg.data = Some(dir.join("data"));
    cfg.out = dir.join("run");
    let run = train(gpu(), &cfg, &mut Silent).unwrap();
    let acc = run.records[1]["test_acc"].as_f64().unwrap();
    assert!(acc > 0.85, "test accuracy {acc} after 2 epochs on 3,000 digits");
}

#[test]
fn vae_elbo_on_the_gpu_equals_the_cpu_reference_within_a_thousandth() {
    let dir = temp_dir("elbo");
    small_mnist(&dir.join("data"), 256, 700); // 700 test images: one chunk of 500 and one of 200
    let mut cfg = TrainConfig::defaults(ModelKind::Vae);
    cfg.epochs = 1;
    cfg.batch = 32;
    cfg.data = Some(dir.join("data"));
    cfg.out = dir.join("run");
    train(gpu(), &cfg, &mut Silent).unwrap();
    // The checkpoint as PyTorch would load it, read back by name.
    let ckpt = wgen::train::checkpoint::Checkpoint::read(&dir.join("run/model.safetensors")).unwrap();
    let vc = VaeConfig::default();
    let (layout, state_layout, mut values, mut state) = Vae::initial(&vc, 0);
    ckpt.fill(&layout, &mut values, &state_layout, &mut state).unwrap();
    let vae = Vae::new(gpu(), &vc, &values, &state).unwrap();
    let dataset = data::load(Some(&dir.join("data")), &Default::default(), &mut |_, _| {}).unwrap();
    let test = DeviceSplit::upload(gpu(), "test", &dataset.test).unwrap();
    let seed = 4;
    let got = vae_scores(gpu(), &vae, &test, 20, seed).unwrap();

    // The reference: the same eps (the CPU twin of the GPU's generator, same keys), f64 throughout.
    let p: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let (enc, dec) = layers(&vc);
    let none = ParamLayout::default();
    let mut total = 0.0;
    for (rows, chunks) in eval_chunks(dataset.test.count) {
        for step in chunks {
            let start = step.batch_start as usize;
            let x: Vec<f64> = dataset.test.images[start * IMAGE..(start + rows) * IMAGE].iter().map(|&b| f64::from(b) / 255.0).collect();
            let eps = cpu::fill_normal(rows * vc.latent, STREAM_EVAL_EPS, step.rng_step, seed);
            let ef = cpu::mlp_forward(&enc, &layout, &none, &p, &mut [], &x, rows);
            let (z, kl) = cpu::reparam_kl_forward(ef.out.last().unwrap(), &eps, rows, vc.latent);
            let df = cpu::mlp_forward(&dec, &layout, &none, &p, &mut [], &z, rows);
            let (_, recon) = cpu::bce_logits(df.out.last().unwrap(), &x, rows, IMAGE, 1.0);
            total += recon.iter().sum::<f64>() + kl.iter().sum::<f64>();
        }
    }
    let want = total / dataset.test.count as f64;
    let rel = (got.test_neg_elbo - want).abs() / want;
    assert!(rel < 1e-3, "GPU {} vs reference {want}: relative difference {rel}", got.test_neg_elbo);
    // The importance-weighted bound is tighter than the ELBO, and bits/dim follow from it.
    assert!(got.iwae_nll < got.test_neg_elbo, "{got:?}");
    assert!((got.bits_per_dim - got.iwae_nll / (784.0 * std::f64::consts::LN_2)).abs() < 1e-12);
}

/// Runs wgen with its cache folder in `cache`, so classifiers it trains stay in the test.
fn wgen_cached(cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgen")).env("XDG_CACHE_HOME", cache).args(args).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{args:?} panicked");
    out
}

/// Runs wgen with an empty cache folder of the test process's own (nothing is trained into it).
fn wgen(args: &[&str]) -> std::process::Output {
    wgen_cached(&std::env::temp_dir().join(format!("wgen-test-no-cache-{}", std::process::id())), args)
}

fn ok(args: &[&str]) -> String {
    let out = wgen(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn eval_writes_eval_json_and_a_calibration_that_orders_the_references() {
    let dir = temp_dir("eval-cli");
    small_mnist(&dir.join("data"), 1000, 200);
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    let (clf, gan, vae) = (dir.join("clf"), dir.join("gan"), dir.join("vae"));
    ok(&["-q", "train", "classifier", "--epochs", "2", "--data", d, "--out", clf.to_str().unwrap()]);
    let clf_model = clf.join("model.safetensors");
    let c = clf_model.to_str().unwrap();
    ok(&["-q", "train", "gan", "--epochs", "2", "--batch", "50", "--eval-every", "1", "--eval-samples", "300", "--classifier", c, "--data", d, "--out", gan.to_str().unwrap()]);
    let records: Vec<serde_json::Value> =
        std::fs::read_to_string(gan.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.iter().all(|r| r["fd"].as_f64().is_some() && r["modes"].as_u64().is_some()), "--eval-every 1 scores every epoch: {records:?}");

    ok(&["eval", gan.to_str().unwrap(), "--classifier", c, "--samples", "300", "--calibrate"]);
    let e = json(&gan.join("eval.json"));
    assert!(e["samples"]["fd"].as_f64().is_some() && e["samples"]["class_shares"].as_array().unwrap().len() == 10, "{e}");
    let cal = json(&gan.join("calibration.json"));
    let fd = |k: &str| cal[k]["fd"].as_f64().unwrap();
    assert!(fd("training images (the floor)") < fd("uniform noise") && fd("training images (the floor)") < fd("blank images"), "{cal}");
    assert!(fd("training images (the floor)") < fd("training images, blurred"), "{cal}");
    assert_eq!(cal["one test digit repeated"]["modes"], 1, "mode collapse covers one class");
    assert!(cal["one test digit repeated"]["inception_score"].as_f64().unwrap() < 1.01);

    ok(&["-q", "train", "vae", "--epochs", "1", "--batch", "50", "--data", d, "--out", vae.to_str().unwrap()]);
    ok(&["eval", vae.to_str().unwrap(), "--iw-samples", "5", "--classifier", c]);
    let v = json(&vae.join("eval.json"));
    assert!(v["vae"]["iwae_nll"].as_f64().unwrap() < v["vae"]["test_neg_elbo"].as_f64().unwrap(), "{v}");

    let refused = wgen(&["eval", clf.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("scores a vae or a gan"));
}

#[test]
fn data_without_a_classifier_gets_one_trained_once_and_cached_by_its_fingerprint() {
    let dir = temp_dir("eval-cache");
    let cache = dir.join("cache");
    small_mnist(&dir.join("data"), 600, 100);
    let d = dir.join("data");
    let (run, again) = (dir.join("vae"), dir.join("vae-again"));
    // Asked to score with no classifier at hand, wgen trains one for this data and keeps it.
    let out = wgen_cached(&cache, &["train", "vae", "--epochs", "1", "--batch", "50", "--eval-every", "1", "--eval-samples", "300", "--data", d.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("has no classifier yet: training one"), "{said}");
    let fingerprint = data::load(Some(&d), &Default::default(), &mut |_, _| {}).unwrap().fingerprint();
    assert!(cache.join("wgen/classifiers/cnn").join(&fingerprint).join("model.safetensors").is_file(), "{said}");
    assert!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().contains("\"fd\""));
    // The same data again, in a copy of the folder: the cached one serves, nothing is trained,
    // and scoring is on by default.
    let copy = dir.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(&d).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let out = wgen_cached(&cache, &["train", "vae", "--epochs", "1", "--batch", "50", "--eval-samples", "300", "--data", copy.to_str().unwrap(), "--out", again.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !said.contains("training one"), "{said}");
    assert!(said.contains("(trained for this data)"), "{said}");
    let out = wgen_cached(&cache, &["eval", again.to_str().unwrap(), "--iw-samples", "2", "--samples", "300"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !said.contains("training one") && said.contains("FD"), "{said}");
}

/// A model.safetensors of untrained weights on the built-in digits (what `wgen train` writes).
/// A freshly initialised gan or vae checkpoint, conditioned on 10 classes when `classes`.
fn untrained(dir: &std::path::Path, model: &str, classes: Option<usize>) -> std::path::PathBuf {
    use wgen::models::gan::{Gan, GanConfig};
    let path = dir.join(format!("{model}-{classes:?}.safetensors"));
    let (layout, state_layout, values, state, config) = match model {
        "gan" => {
            let cfg = GanConfig { classes, ..GanConfig::default() };
            let (l, s, v, st) = Gan::initial(&cfg, 0);
            (l, s, v, st, serde_json::to_string(&cfg).unwrap())
        }
        _ => {
            let cfg = VaeConfig { classes, ..VaeConfig::default() };
            let (l, s, v, st) = Vae::initial(&cfg, 0);
            (l, s, v, st, serde_json::to_string(&cfg).unwrap())
        }
    };
    let meta = std::collections::HashMap::from([("model".to_string(), model.to_string()), ("config".to_string(), config)]);
    wgen::train::checkpoint::write_safetensors(&path, &layout, &values, &state_layout, &state, meta).unwrap();
    path
}

#[test]
fn eval_scores_gan_and_vae_samples_of_the_built_in_digits_with_no_flags() {
    let dir = temp_dir("eval-no-flags");
    // Each model once and each kind of file once (5,000 samples a score): a plain GAN, a CVAE.
    for (model, classes) in [("gan", None), ("vae", Some(10))] {
        let path = untrained(&dir, model, classes);
        let said = ok(&["eval", path.to_str().unwrap()]);
        assert!(said.contains("classifier: the built-in digit classifier"), "{said}");
        let line = said.lines().find(|l| l.contains(&format!("{model} samples (5000)"))).unwrap_or_else(|| panic!("{said}"));
        assert!(line.contains("FD") && line.contains("IS") && line.contains("classes ≥5%"), "{line}");
        // Named after the model file, so that models side by side keep their own scores.
        let e = json(&dir.join(format!("{model}-{classes:?}.eval.json")));
        assert!(e["samples"]["fd"].as_f64().unwrap() > 0.0 && e["samples"]["class_shares"].as_array().unwrap().len() == 10, "{e}");
        // Conditional models also say how often a sample is the class it asked for.
        let agreement = &e["samples"]["agreement"];
        assert_eq!(said.contains("asked-for class"), classes.is_some(), "{said}");
        assert_eq!(agreement.is_null(), classes.is_none(), "{e}");
        if classes.is_some() {
            assert!((0.0..=1.0).contains(&agreement["overall"].as_f64().unwrap()) && agreement["per_class"].as_array().unwrap().len() == 10, "{e}");
        }
    }
}

#[test]
fn class_agreement_counts_samples_classified_as_the_class_they_asked_for() {
    // Three classes; rows ask 0, 1, 2, 0, 1, 2: the first three are right, then one in three.
    let probs = [0.8, 0.1, 0.1, 0.1, 0.7, 0.2, 0.0, 0.1, 0.9, 0.2, 0.5, 0.3, 0.1, 0.6, 0.3, 0.4, 0.4, 0.2];
    let a = wgen::eval::class_agreement(&probs, 3, &[0, 1, 2, 0, 1, 2]);
    assert_eq!(a.overall, 4.0 / 6.0);
    assert_eq!(a.per_class, vec![0.5, 1.0, 0.5]);
}

#[test]
fn the_built_in_classifier_scores_the_accuracy_its_note_states() {
    let note = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/classifier/README.md")).unwrap();
    let stated: f64 = note
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: ")?.strip_suffix('%')?.parse().ok())
        .expect("the note has a `test accuracy: N%` line");
    assert!(stated >= 98.5, "the built-in classifier is a CNN at 98.5% or better, its note says {stated}%");
    let g = gpu();
    let dataset = data::builtin();
    let features = wgen::train::Judge::Shipped.load(g).unwrap();
    assert!(!features.classifier.config.conv.is_empty(), "the built-in classifier is convolutional");
    let images: Vec<f32> = dataset.test.images.iter().map(|&b| f32::from(b) / 255.0).collect();
    let (_, probs) = features.of(g, &images).unwrap();
    let correct = probs.chunks(10).zip(&dataset.test.labels).filter(|(p, &l)| wgen::eval::argmax(p) == usize::from(l)).count();
    let measured = 100.0 * correct as f64 / dataset.test.count as f64;
    // One image of the 1,000 either way: another matmul family sums in another order, which may
    // tip one borderline digit.
    assert!((measured - stated).abs() <= 0.1 + 1e-9, "the note says {stated}%, the classifier scores {measured}%");
}

#[test]
fn a_classifier_file_from_before_the_cnn_loads_as_the_mlp_it_holds() {
    use wgen::models::classifier::{layers, ClassifierConfig};
    // The config the MLP classifier shipped before the CNN carries: no conv layers, no shifts.
    let old: ClassifierConfig = serde_json::from_str(r#"{"hidden":[512,256],"init":"torch"}"#).unwrap();
    assert!(old.conv.is_empty() && old.shift == 0, "{old:?}");
    let names: Vec<String> = layers(&old).into_iter().map(|l| format!("{} {}→{}", l.name, l.inp, l.out)).collect();
    assert_eq!(names, ["classifier.fc1 784→512", "classifier.fc2 512→256", "classifier.fc3 256→10"]);
    // The CNN: two stride-2 convolutions to 64 × 7 × 7, each batch-normalised, then 256 features.
    let cnn: Vec<String> = layers(&ClassifierConfig::default()).into_iter().map(|l| format!("{} {}→{}", l.name, l.inp, l.out)).collect();
    assert_eq!(cnn, ["classifier.conv1 784→6272", "classifier.conv2 6272→3136", "classifier.fc1 3136→256", "classifier.fc2 256→10"]);
    assert!(layers(&ClassifierConfig::default()).iter().take(2).all(|l| l.batchnorm.is_some()));
}
