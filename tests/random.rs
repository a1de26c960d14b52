//! The GPU's counter-based generator: distribution and keying. A million normals drawn on the
//! GPU must have the right mean, variance and shape (Kolmogorov–Smirnov), and the same key must
//! give the same numbers while any change of seed, stream or step gives different ones.

mod common;

use common::{gpu, read, zeros};
use wgen::gpu::Tensor;
use wgen::nn::{self, Step, StepBuffer};

fn normals(n: usize, seed: u64, stream: u32, rng_step: u32) -> Vec<f32> {
    let g = gpu();
    let out = zeros("z", &[n]);
    let steps = StepBuffer::new(g, "rng", 1);
    steps.set(g, &Step { rng_step, ..Step::default() });
    let launch = nn::fill_normal(g, "rng", &steps.uniform, out.view(), stream, seed);
    g.run("rng", &[&launch]);
    read(&out)
}

/// Standard normal CDF through erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + erf.copysign(x))
}

#[test]
fn a_million_gpu_normals_have_mean_zero_variance_one_and_pass_ks() {
    let n = 1 << 20;
    let z: Vec<f64> = normals(n, 2024, 1, 0).into_iter().map(f64::from).collect();
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    // Standard errors: 1/sqrt(n) ≈ 0.001 for the mean, sqrt(2/n) ≈ 0.0014 for the variance.
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.007, "variance {var}");
    let mut sorted = z;
    sorted.sort_by(f64::total_cmp);
    let ks = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = phi(x);
            (f - i as f64 / n as f64).abs().max(((i + 1) as f64 / n as f64 - f).abs())
        })
        .fold(0.0, f64::max);
    // The 0.1% critical value of the KS statistic is 1.95/sqrt(n) ≈ 0.0019.
    assert!(ks < 1.95 / (n as f64).sqrt(), "Kolmogorov–Smirnov statistic {ks}");
}

#[test]
fn same_key_gives_the_same_numbers() {
    assert_eq!(normals(5000, 7, 2, 3), normals(5000, 7, 2, 3));
}

#[test]
fn a_different_seed_stream_or_step_gives_different_numbers() {
    let base = normals(5000, 7, 2, 3);
    for other in [normals(5000, 8, 2, 3), normals(5000, 7, 3, 3), normals(5000, 7, 2, 4), normals(5000, 1 << 40 | 7, 2, 3)] {
        let same = base.iter().zip(&other).filter(|(a, b)| a == b).count();
        assert!(same < 5, "{same} of 5000 values repeat under a different key");
    }
}

#[test]
fn gpu_labels_match_the_cpu_twin_land_at_the_offset_and_cover_every_class_evenly() {
    let g = gpu();
    let (n, classes, offset) = (70_001usize, 7usize, 13usize);
    let out = Tensor::from_slice(g, "labels", &[offset + n], &vec![-1.0; offset + n]).unwrap();
    let steps = StepBuffer::new(g, "rng", 1);
    steps.set(g, &Step { rng_step: 5, ..Step::default() });
    let launch = nn::fill_labels(g, "labels", &steps.uniform, out.view().rows(offset, n), classes, 6, 99);
    g.run("labels", &[&launch]);
    let got = read(&out);
    assert!(got[..offset].iter().all(|&v| v == -1.0), "the rows before the offset are left alone");
    let want = wgen::reference::fill_labels(n, classes, 6, 5, 99);
    let got: Vec<usize> = got[offset..].iter().map(|&v| v as usize).collect();
    assert_eq!(got, want, "the GPU labels are the CPU twin's");
    let mut counts = vec![0usize; classes];
    for &c in &got {
        counts[c] += 1;
    }
    // 10,000 expected per class; a binomial standard deviation is ~93, so ±500 is > 5 sigma.
    for (c, &k) in counts.iter().enumerate() {
        assert!(k.abs_diff(n / classes) < 500, "class {c} drawn {k} times of {n}: {counts:?}");
    }
}
