//! Every backward reference in `wgen::reference` checked against central finite differences of
//! its forward reference, in f64. The GPU backward kernels are then held to these references in
//! tests/kernels.rs. Each scalar loss is L = Σ c ⊙ output with random c, so dL/doutput = c.

mod common;

use common::uniform;
use wgen::nn::Activation;
use wgen::reference as cpu;

const H: f64 = 1e-6;

/// Central differences of `loss` at `x`, compared to `analytic` with a relative tolerance.
fn check(what: &str, x: &[f64], analytic: &[f64], loss: impl Fn(&[f64]) -> f64) {
    assert_eq!(x.len(), analytic.len(), "{what}: gradient length");
    let mut probe = x.to_vec();
    for i in 0..x.len() {
        probe[i] = x[i] + H;
        let up = loss(&probe);
        probe[i] = x[i] - H;
        let down = loss(&probe);
        probe[i] = x[i];
        let numeric = (up - down) / (2.0 * H);
        let tol = 1e-6 + 1e-5 * numeric.abs().max(analytic[i].abs());
        assert!(
            (numeric - analytic[i]).abs() <= tol,
            "{what}: d/dx[{i}] analytic {} vs numeric {numeric} (tolerance {tol})",
            analytic[i]
        );
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Keeps values away from the kinks of ReLU/LeakyReLU, where differences are meaningless.
fn away_from_zero(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| if x.abs() < 0.05 { x + 0.1f64.copysign(x) } else { x }).collect()
}

const SMOOTH_OR_KINKED: [Activation; 5] =
    [Activation::Identity, Activation::Relu, Activation::LeakyRelu(0.2), Activation::Sigmoid, Activation::Tanh];

#[test]
fn matmul_backward_input_matches_finite_differences_for_every_activation() {
    let (n, inp, out) = (3, 5, 4);
    for (i, act) in SMOOTH_OR_KINKED.into_iter().enumerate() {
        let seed = 10 * i as u64;
        // u is the previous layer's pre-activation; prev = act(u) feeds this layer.
        let u = away_from_zero(uniform(seed, n * inp, -2.0, 2.0));
        let w = uniform(seed + 1, out * inp, -1.0, 1.0);
        let c = uniform(seed + 2, n * out, -1.0, 1.0);
        let loss = |u: &[f64]| {
            let prev: Vec<f64> = u.iter().map(|&v| cpu::activate(v, act)).collect();
            dot(&c, &cpu::matmul_forward(&prev, &w, None, n, inp, out, Activation::Identity))
        };
        let prev: Vec<f64> = u.iter().map(|&v| cpu::activate(v, act)).collect();
        let analytic = cpu::matmul_backward_input(&c, &w, Some(&prev), n, inp, out, act);
        check(&format!("matmul_backward_input {act}"), &u, &analytic, loss);
    }
}

#[test]
fn matmul_backward_weight_and_bias_match_finite_differences() {
    let (n, inp, out) = (4, 3, 5);
    let x = uniform(1, n * inp, -1.0, 1.0);
    let wb = uniform(2, out * inp + out, -1.0, 1.0);
    let c = uniform(3, n * out, -1.0, 1.0);
    let loss = |wb: &[f64]| dot(&c, &cpu::matmul_forward(&x, &wb[..out * inp], Some(&wb[out * inp..]), n, inp, out, Activation::Identity));
    let mut analytic = vec![0.0; out * inp + out];
    let (dw, db) = analytic.split_at_mut(out * inp);
    cpu::matmul_backward_weight(&c, &x, n, inp, out, dw, Some(db), false);
    check("matmul_backward_weight", &wb, &analytic, loss);
}

#[test]
fn matmul_forward_activation_derivative_matches_finite_differences() {
    // The forward epilogue act(x·Wᵀ + b) differentiated by the next backward_input through y.
    let (n, inp, out) = (2, 3, 4);
    for act in SMOOTH_OR_KINKED {
        let x = uniform(4, n * inp, -1.0, 1.0);
        let w = uniform(5, out * inp, -1.0, 1.0);
        let b = away_from_zero(uniform(6, out, -1.0, 1.0));
        let c = uniform(7, n * out, -1.0, 1.0);
        let loss = |b: &[f64]| dot(&c, &cpu::matmul_forward(&x, &w, Some(b), n, inp, out, act));
        let y = cpu::matmul_forward(&x, &w, Some(&b), n, inp, out, act);
        let mut db = vec![0.0; out];
        for r in 0..n {
            for o in 0..out {
                db[o] += c[r * out + o] * cpu::activate_grad_from_output(y[r * out + o], act);
            }
        }
        check(&format!("activation {act} through the bias"), &b, &db, loss);
    }
}

#[test]
fn batchnorm_backward_matches_finite_differences() {
    let (rows, cols) = (6, 3);
    for (i, act) in [Activation::Identity, Activation::LeakyRelu(0.2), Activation::Tanh, Activation::Sigmoid].into_iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        let x = uniform(seed, rows * cols, -2.0, 2.0);
        let gamma = uniform(seed + 1, cols, 0.5, 1.5);
        let beta = uniform(seed + 2, cols, -0.5, 0.5);
        let c = uniform(seed + 3, rows * cols, -1.0, 1.0);
        let eps = 0.8;
        let forward = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let (mut rm, mut rv) = (vec![0.0; cols], vec![1.0; cols]);
            cpu::batchnorm_forward_train(x, gamma, beta, rows, cols, eps, 0.1, act, &mut rm, &mut rv)
        };
        let (y, saved) = forward(&x, &gamma, &beta);
        let (dx, dgamma, dbeta) = cpu::batchnorm_backward(&c, &y, &x, &gamma, &saved, rows, cols, act);
        check(&format!("batchnorm dx {act}"), &x, &dx, |x| dot(&c, &forward(x, &gamma, &beta).0));
        check(&format!("batchnorm dgamma {act}"), &gamma, &dgamma, |g| dot(&c, &forward(&x, g, &beta).0));
        check(&format!("batchnorm dbeta {act}"), &beta, &dbeta, |b| dot(&c, &forward(&x, &gamma, b).0));
    }
}

#[test]
fn bce_logits_gradient_matches_finite_differences_with_soft_targets() {
    let (rows, cols) = (3, 5);
    let logits = uniform(200, rows * cols, -6.0, 6.0);
    let targets = uniform(201, rows * cols, 0.0, 1.0);
    let scale = 1.0 / rows as f64;
    let loss = |l: &[f64]| cpu::bce_logits(l, &targets, rows, cols, scale).1.iter().sum::<f64>() * scale;
    let (grad, _) = cpu::bce_logits(&logits, &targets, rows, cols, scale);
    check("bce_logits", &logits, &grad, loss);
}

#[test]
fn gan_loss_gradients_match_finite_differences() {
    let batch = 4;
    let logits = uniform(300, 2 * batch, -4.0, 4.0);
    let out = cpu::gan_loss(&logits, batch, 0.9, 0.1);
    check("gan d_loss", &logits, &out.d_grad, |l| cpu::gan_loss(l, batch, 0.9, 0.1).metrics[0]);
    let fake = &logits[batch..];
    check("gan g_loss", fake, &out.g_grad, |f| {
        let all: Vec<f64> = logits[..batch].iter().chain(f).copied().collect();
        cpu::gan_loss(&all, batch, 0.9, 0.1).metrics[1]
    });
}

#[test]
fn reparam_kl_backward_matches_finite_differences() {
    let (rows, latent) = (3, 4);
    let stats = uniform(400, rows * 2 * latent, -2.0, 2.0);
    let eps = uniform(401, rows * latent, -2.0, 2.0);
    let c = uniform(402, rows * latent, -1.0, 1.0);
    let s = 0.3;
    let loss = |st: &[f64]| {
        let (z, kl) = cpu::reparam_kl_forward(st, &eps, rows, latent);
        dot(&c, &z) + s * kl.iter().sum::<f64>()
    };
    let analytic = cpu::reparam_kl_backward(&stats, &eps, &c, rows, latent, s);
    check("reparam_kl", &stats, &analytic, loss);
}

#[test]
fn finite_difference_check_catches_a_wrong_gradient() {
    // The checker itself must be able to fail: a gradient off by 1% is refused.
    let x = uniform(500, 4, -1.0, 1.0);
    let wrong: Vec<f64> = x.iter().map(|v| 2.0 * v * 1.01).collect();
    let caught = std::panic::catch_unwind(|| check("x²", &x, &wrong, |x| x.iter().map(|v| v * v).sum()));
    assert!(caught.is_err());
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let (rows, classes) = (3, 7);
    let logits = uniform(600, rows * classes, -3.0, 3.0);
    let labels = vec![2, 0, 6];
    let scale = 1.0 / rows as f64;
    let loss = |l: &[f64]| cpu::softmax_cross_entropy(l, &labels, rows, classes, scale).1.iter().sum::<f64>() * scale;
    let (grad, _, _) = cpu::softmax_cross_entropy(&logits, &labels, rows, classes, scale);
    check("softmax_cross_entropy", &logits, &grad, loss);
}

#[test]
fn logsumexp_is_stable_and_exact_on_known_values() {
    // log mean exp of {0, ln 3} = ln 2; shifting every value by 1000 shifts the result by 1000.
    let got = cpu::logsumexp_groups(&[0.0, 3f64.ln(), 1000.0, 1000.0 + 3f64.ln()], 2);
    assert!((got[0] - 2f64.ln()).abs() < 1e-12 && (got[1] - 1000.0 - 2f64.ln()).abs() < 1e-9, "{got:?}");
}

#[test]
fn class_logit_backward_matches_finite_differences() {
    let (rows, classes) = (13usize, 4usize);
    let dim = 1 + classes;
    let labels: Vec<usize> = (0..rows).map(|r| (r * 3) % classes).collect();
    let heads = uniform(1610, rows * dim, -1.0, 1.0);
    let c = uniform(1611, rows, -1.0, 1.0);
    let analytic = cpu::class_logit_backward(&labels, &c, dim);
    check("class_logit_backward", &heads, &analytic, |h| dot(&c, &cpu::class_logit_forward(&labels, h)));
}

#[test]
fn embedding_backward_matches_finite_differences_with_repeated_and_absent_classes() {
    let (classes, dim) = (7, 5);
    // Class 3 thrice, class 6 never: the gradient must sum repeats and leave absent rows zero.
    let labels = [3usize, 0, 3, 5, 1, 3, 2, 4, 0];
    let table = uniform(70, classes * dim, -1.0, 1.0);
    let c = uniform(71, labels.len() * dim, -1.0, 1.0);
    let analytic = cpu::embedding_backward(&labels, &c, classes, dim);
    check("embedding_backward", &table, &analytic, |t| dot(&c, &cpu::embedding_forward(&labels, Some(t), dim)));
    assert!(analytic[6 * dim..].iter().all(|&g| g == 0.0), "a class no row asked for gets no gradient");
}

type ConvForward = fn(&[f64], &[f64], Option<&[f64]>, &wgen::nn::ConvShape, usize, Activation) -> Vec<f64>;
type ConvBackwardInput = ConvForward;
type ConvBackwardWeight = fn(&[f64], &[f64], &wgen::nn::ConvShape, usize, &mut [f64], Option<&mut [f64]>);

/// A conv layer's weight, bias and input gradients from its twin's backward functions, against
/// finite differences of its forward; the input as the previous layer's `act` output, so the
/// fused act' is checked too. `inp`, `out` and `bias` are the layer's widths.
#[allow(clippy::too_many_arguments)]
fn check_conv(
    what: &str, s: wgen::nn::ConvShape, (inp, out, bias): (usize, usize, usize), act: Activation, seed: u64, forward: ConvForward,
    backward_input: ConvBackwardInput, backward_weight: ConvBackwardWeight,
) {
    let batch = 2;
    let nw = s.out_ch * s.patch();
    let u = uniform(seed, batch * inp, -2.0, 2.0);
    let wb = uniform(seed + 1, nw + bias, -1.0, 1.0);
    let c = uniform(seed + 2, batch * out, -1.0, 1.0);
    let x: Vec<f64> = u.iter().map(|&v| cpu::activate(v, act)).collect();
    let loss_w = |wb: &[f64]| dot(&c, &forward(&x, &wb[..nw], Some(&wb[nw..]), &s, batch, Activation::Identity));
    let mut analytic = vec![0.0; wb.len()];
    let (dw, db) = analytic.split_at_mut(nw);
    backward_weight(&c, &x, &s, batch, dw, Some(db));
    check(&format!("{what} weight and bias of {s}"), &wb, &analytic, loss_w);
    let loss_u = |u: &[f64]| {
        let x: Vec<f64> = u.iter().map(|&v| cpu::activate(v, act)).collect();
        dot(&c, &forward(&x, &wb[..nw], None, &s, batch, Activation::Identity))
    };
    check(&format!("{what} input of {s}"), &u, &backward_input(&c, &wb[..nw], Some(&x), &s, batch, act), loss_u);
}

#[test]
fn conv2d_backward_matches_finite_differences_with_padding_and_stride() {
    use wgen::nn::ConvShape;
    for (i, s) in [ConvShape::conv2d(2, 3, 5, 4, 3, 2, 1), ConvShape::conv2d(3, 2, 4, 5, 2, 1, 2)].into_iter().enumerate() {
        let widths = (s.in_len(), s.out_len(), s.out_ch);
        check_conv("conv2d", s, widths, Activation::Tanh, 80 + 10 * i as u64, cpu::conv2d_forward, cpu::conv2d_backward_input, cpu::conv2d_backward_weight);
    }
}

#[test]
fn conv_transpose2d_backward_matches_finite_differences_with_padding_and_stride() {
    use wgen::nn::ConvShape;
    for (i, s) in [ConvShape::transposed(3, 2, 3, 2, 4, 2, 1), ConvShape::transposed(2, 3, 3, 4, 3, 1, 2)].into_iter().enumerate() {
        // Its input is the Conv2d's output, and its bias one value per Conv2d input channel.
        let widths = (s.out_len(), s.in_len(), s.in_ch);
        check_conv(
            "conv_transpose2d",
            s,
            widths,
            Activation::Sigmoid,
            90 + 10 * i as u64,
            cpu::conv_transpose2d_forward,
            cpu::conv_transpose2d_backward_input,
            cpu::conv_transpose2d_backward_weight,
        );
    }
}

#[test]
fn diff_augment_backward_matches_finite_differences_for_each_transform_and_all_together() {
    use wgen::nn::AugmentPolicy;
    let (rows, channels, side) = (3, 3, 6);
    let n = channels * side * side;
    let x = uniform(1500, rows * n, -1.0, 1.0);
    let draws = uniform(1501, rows * 8, 0.01, 0.99);
    let c = uniform(1502, rows * n, -1.0, 1.0);
    let policies = [
        AugmentPolicy { color: true, ..AugmentPolicy::default() },
        AugmentPolicy { translation: true, ..AugmentPolicy::default() },
        AugmentPolicy { cutout: true, ..AugmentPolicy::default() },
        AugmentPolicy::ALL,
    ];
    for policy in policies {
        let analytic = cpu::diff_augment_backward(&c, &draws, policy, (channels, side));
        check(&format!("diff_augment {policy}"), &x, &analytic, |x| dot(&c, &cpu::diff_augment(x, &draws, policy, (channels, side))));
    }
}

#[test]
fn gan_hinge_loss_gradients_match_finite_differences_inside_and_outside_the_margins() {
    let batch = 6;
    // Away from the kinks at ±1.
    let logits: Vec<f64> = uniform(310, 2 * batch, -3.0, 3.0).into_iter().map(|x| if (x.abs() - 1.0).abs() < 0.05 { x + 0.1 } else { x }).collect();
    let out = cpu::gan_hinge_loss(&logits, batch);
    check("hinge d_loss", &logits, &out.d_grad, |l| cpu::gan_hinge_loss(l, batch).metrics[0]);
    check("hinge g_loss", &logits[batch..], &out.g_grad, |f| {
        let all: Vec<f64> = logits[..batch].iter().chain(f).copied().collect();
        cpu::gan_hinge_loss(&all, batch).metrics[1]
    });
}

#[test]
fn spectral_norm_backward_matches_finite_differences_of_w_over_sigma_with_u_and_v_held() {
    // W / σ(W) with σ = u·(W v), u and v from one power iteration and then held constant, as
    // autograd holds PyTorch's (computed without grad). A single row too: the logit's weight.
    for (rows, cols) in [(4, 7), (1, 9)] {
        let w = uniform(120 + rows as u64, rows * cols, -1.0, 1.0);
        let c = uniform(121, rows * cols, -1.0, 1.0);
        let (mut u, mut v) = (uniform(122, rows, -1.0, 1.0), uniform(123, cols, -1.0, 1.0));
        let sigma = cpu::spectral_power(&w, rows, cols, &mut u, &mut v);
        let loss = |w: &[f64]| {
            let sigma: f64 = (0..rows).map(|r| u[r] * (0..cols).map(|k| w[r * cols + k] * v[k]).sum::<f64>()).sum();
            w.iter().zip(&c).map(|(x, ci)| x / sigma * ci).sum::<f64>()
        };
        check(&format!("spectral_backward {rows}x{cols}"), &w, &cpu::spectral_backward(&c, &w, &u, &v, sigma), loss);
    }
}
