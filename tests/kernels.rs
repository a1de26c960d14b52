//! Every kernel on the GPU against its CPU twin in `wgen::reference`, on shapes that are not
//! multiples of the 64×64×16 matmul tile. Tolerances are stated per test: f32 kernels against
//! f64 references, so they scale with the length of the sums involved.

mod common;

use common::*;
use wgen::gpu::{grid_1d, Binding, Gpu, Kernel, Launch, MatmulImpl, Tensor, View};
use wgen::nn::{self, Activation, AdamConfig, BatchGroups, BatchnormTensors, Step, StepBuffer};
use wgen::reference as cpu;

const ACTIVATIONS: [Activation; 5] =
    [Activation::Identity, Activation::Relu, Activation::LeakyRelu(0.2), Activation::Sigmoid, Activation::Tanh];

/// Matmul sums of k products of O(1) values: error grows like sqrt(k)·2^-24 relative.
const MM_ATOL: f64 = 2e-5;
const MM_RTOL: f64 = 2e-5;

fn check_forward(n: usize, inp: usize, out: usize, act: Activation, seed: u64) {
    check_forward_with(MatmulImpl::Tiled, n, inp, out, act, seed);
}

/// Returns the kernel that ran.
fn check_forward_with(choice: MatmulImpl, n: usize, inp: usize, out: usize, act: Activation, seed: u64) -> Kernel {
    let g = gpu();
    let x = rounded(&uniform(seed, n * inp, -1.0, 1.0));
    let bound = 1.0 / (inp as f64).sqrt();
    // Weights and bias packed as in the flat parameter buffer: w, then b.
    let wb = rounded(&uniform(seed + 1, out * inp + out, -bound, bound));
    let tx = upload("x", &[n, inp], &x);
    let tw = upload("w", &[out * inp + out], &wb);
    let ty = zeros("y", &[n, out]);
    let w = View::new(&tw.buffer, 0, out, inp);
    let launch = nn::matmul_forward_with(g, choice, "test", tx.view(), w, Some(out * inp), ty.view(), act);
    g.run("test", &[&launch]);
    let want = cpu::matmul_forward(&x, &wb[..out * inp], Some(&wb[out * inp..]), n, inp, out, act);
    assert_close(&format!("{:?} {n}x{inp}·{inp}x{out} {act}", launch.kernel), &read(&ty), &want, MM_ATOL, MM_RTOL);
    launch.kernel
}

#[test]
fn matmul_forward_vec4_handles_rows_and_columns_not_multiple_of_block() {
    for (i, &(n, inp, out)) in [(1, 4, 1), (7, 100, 65), (65, 784, 7), (100, 256, 257), (33, 32, 130)].iter().enumerate() {
        let kernel = check_forward_with(MatmulImpl::Vec4, n, inp, out, ACTIVATIONS[i % 5], 50 + i as u64);
        assert_eq!(kernel, Kernel::MatmulForwardVec4);
    }
}

#[test]
fn vec4_matmul_falls_back_to_tiles_when_k_is_not_a_multiple_of_four() {
    assert_eq!(check_forward_with(MatmulImpl::Vec4, 9, 7, 5, Activation::Relu, 60), Kernel::MatmulForward);
}

#[test]
fn matmul_forward_subgroup_handles_rows_not_multiple_of_16_and_a_single_output() {
    let shapes = [(1, 4, 1), (7, 100, 65), (65, 784, 7), (100, 256, 257), (33, 32, 130), (64, 256, 1), (9, 12, 33), (20, 64, 48)];
    for (i, &(n, inp, out)) in shapes.iter().enumerate() {
        let kernel = check_forward_with(MatmulImpl::Subgroup, n, inp, out, ACTIVATIONS[i % 5], 70 + i as u64);
        assert_eq!(kernel, Kernel::MatmulForwardSubgroup);
    }
}

#[test]
fn subgroup_matmul_falls_back_to_tiles_when_k_is_not_a_multiple_of_four() {
    assert_eq!(check_forward_with(MatmulImpl::Subgroup, 9, 7, 5, Activation::Tanh, 61), Kernel::MatmulForward);
}

#[test]
fn matmul_forward_handles_shapes_not_multiple_of_tile() {
    for (i, &(n, inp, out)) in [(1, 7, 1), (7, 63, 65), (65, 100, 7), (100, 257, 63), (64, 784, 257), (128, 65, 784)].iter().enumerate() {
        check_forward(n, inp, out, ACTIVATIONS[i % 5], i as u64);
    }
}

#[test]
fn matmul_forward_applies_every_activation() {
    for (i, act) in ACTIVATIONS.into_iter().enumerate() {
        check_forward(33, 70, 90, act, 100 + i as u64);
    }
}

#[test]
fn matmul_forward_without_bias_reads_row_offsets() {
    for (choice, inp) in [(MatmulImpl::Tiled, 45), (MatmulImpl::Vec4, 44), (MatmulImpl::Subgroup, 44)] {
        forward_second_half(choice, inp);
    }
}

fn forward_second_half(choice: MatmulImpl, inp: usize) {
    let g = gpu();
    let (rows, out) = (70, 19);
    let x = rounded(&uniform(7, 2 * rows * inp, -1.0, 1.0));
    let w = rounded(&uniform(8, out * inp, -0.3, 0.3));
    let tx = upload("x", &[2 * rows, inp], &x);
    let tw = upload("w", &[out, inp], &w);
    let ty = zeros("y", &[2 * rows, out]);
    // The second half of x into the second half of y: the GAN's [real; fake] batch layout.
    let launch = nn::matmul_forward_with(g, choice, "test", tx.view().rows(rows, rows), tw.view(), None, ty.view().rows(rows, rows), Activation::Identity);
    let expect = match choice {
        MatmulImpl::Tiled => Kernel::MatmulForward,
        MatmulImpl::Vec4 => Kernel::MatmulForwardVec4,
        MatmulImpl::Subgroup => Kernel::MatmulForwardSubgroup,
    };
    assert_eq!(launch.kernel, expect);
    g.run("test", &[&launch]);
    let want = cpu::matmul_forward(&x[rows * inp..], &w, None, rows, inp, out, Activation::Identity);
    let got = read(&ty);
    assert_close("second half", &got[rows * out..], &want, MM_ATOL, MM_RTOL);
    assert!(got[..rows * out].iter().all(|&v| v == 0.0), "the first half must stay untouched");
}

fn check_backward_input(choice: MatmulImpl, shapes: &[(usize, usize, usize)], expect: Kernel) {
    let g = gpu();
    for (i, &(n, inp, out)) in shapes.iter().enumerate() {
        let seed = 200 + i as u64;
        let act = ACTIVATIONS[i % 5];
        let dy = rounded(&uniform(seed, n * out, -1.0, 1.0));
        let w = rounded(&uniform(seed + 1, out * inp, -0.5, 0.5));
        // A plausible activation output for `act`, so its derivative is exercised on both sides.
        let prev = rounded(&uniform(seed + 2, n * inp, -1.0, 1.0).iter().map(|&v| cpu::activate(v * 3.0, act)).collect::<Vec<_>>());
        let (tdy, tw, tprev) = (upload("dy", &[n, out], &dy), upload("w", &[out, inp], &w), upload("prev", &[n, inp], &prev));
        let tdx = zeros("dx", &[n, inp]);
        let launch = nn::matmul_backward_input_with(g, choice, "test", tdy.view(), tw.view(), tdx.view(), Some((tprev.view(), act)));
        assert_eq!(launch.kernel, expect);
        g.run("test", &[&launch]);
        let want = cpu::matmul_backward_input(&dy, &w, Some(&prev), n, inp, out, act);
        assert_close(&format!("{expect:?} {n}x{out}·{out}x{inp} {act}"), &read(&tdx), &want, MM_ATOL, MM_RTOL);
    }
}

#[test]
fn matmul_backward_input_handles_shapes_not_multiple_of_tile() {
    let shapes = [(1, 1, 1), (7, 65, 63), (65, 7, 100), (100, 784, 257), (64, 257, 65)];
    check_backward_input(MatmulImpl::Tiled, &shapes, Kernel::MatmulBackwardInput);
}

#[test]
fn matmul_backward_input_vec4_handles_rows_not_multiple_of_block() {
    let shapes = [(1, 4, 4), (7, 100, 64), (65, 784, 260), (100, 32, 128), (33, 1024, 784)];
    check_backward_input(MatmulImpl::Vec4, &shapes, Kernel::MatmulBackwardInputVec4);
}

#[test]
fn matmul_backward_input_subgroup_handles_any_k_and_rows_not_multiple_of_16() {
    let shapes = [(1, 4, 1), (7, 100, 63), (65, 784, 1), (100, 32, 129), (33, 1024, 784), (9, 256, 7), (9, 256, 8), (70, 100, 64)];
    check_backward_input(MatmulImpl::Subgroup, &shapes, Kernel::MatmulBackwardInputSubgroup);
}

fn check_backward_weight(choice: MatmulImpl, shapes: &[(usize, usize, usize)], expect: Kernel) {
    check_backward_weight_modes(choice, shapes, &[false, true], expect);
}

fn check_backward_weight_modes(choice: MatmulImpl, shapes: &[(usize, usize, usize)], modes: &[bool], expect: Kernel) {
    let g = gpu();
    for (i, &(n, inp, out)) in shapes.iter().enumerate() {
        for &accumulate in modes {
            let seed = 300 + 2 * i as u64 + u64::from(accumulate);
            let dy = rounded(&uniform(seed, n * out, -1.0, 1.0));
            let x = rounded(&uniform(seed + 1, n * inp, -1.0, 1.0));
            let before = rounded(&uniform(seed + 2, out * inp + out, -1.0, 1.0));
            let (tdy, tx) = (upload("dy", &[n, out], &dy), upload("x", &[n, inp], &x));
            let tg = upload("grads", &[out * inp + out], &before);
            let dw = View::new(&tg.buffer, 0, out, inp);
            let launch = nn::matmul_backward_weight_with(g, choice, "test", tdy.view(), tx.view(), dw, Some(out * inp), accumulate);
            assert_eq!(launch.kernel, expect);
            g.run("test", &[&launch]);
            let mut want = before.clone();
            let (w_part, b_part) = want.split_at_mut(out * inp);
            cpu::matmul_backward_weight(&dy, &x, n, inp, out, w_part, Some(b_part), accumulate);
            // Sums over n rows of products in [-1, 1]: allow for n.
            let atol = 1e-5 * (n as f64).sqrt();
            assert_close(&format!("{expect:?} {out}x{n}·{n}x{inp} accumulate={accumulate}"), &read(&tg), &want, atol, MM_RTOL);
        }
    }
}

#[test]
fn matmul_backward_weight_fuses_bias_gradient_and_accumulates() {
    let shapes = [(1, 1, 1), (7, 63, 65), (100, 65, 7), (257, 784, 100), (64, 100, 257)];
    check_backward_weight(MatmulImpl::Tiled, &shapes, Kernel::MatmulBackwardWeight);
}

#[test]
fn matmul_backward_weight_vec4_fuses_bias_gradient_over_odd_batch_sizes() {
    let shapes = [(1, 4, 4), (7, 100, 64), (257, 784, 260), (63, 32, 128), (128, 1024, 784)];
    check_backward_weight(MatmulImpl::Vec4, &shapes, Kernel::MatmulBackwardWeightVec4);
}

#[test]
fn matmul_backward_weight_subgroup_fuses_bias_gradient_for_any_out_batch_and_alignment() {
    let shapes = [(1, 4, 1), (7, 100, 63), (257, 784, 1), (63, 32, 129), (128, 1024, 784), (13, 256, 9), (13, 100, 20), (70, 32, 64)];
    check_backward_weight_modes(MatmulImpl::Subgroup, &shapes, &[false], Kernel::MatmulBackwardWeightSubgroup);
}

/// dW split into chunks of k, each into its slice of the partials, then summed in order: k
/// not a multiple of the chunk (the last one short), more splits asked than k has rows, m and
/// n not multiples of the 32 × 32 block; the bias slot beside dW is left as it was. A shape
/// that is no whole vec4s runs unsplit.
#[test]
fn matmul_backward_weight_split_sums_uneven_chunks_in_order_and_falls_back_unsplit() {
    let g = gpu().with_matmul(MatmulImpl::Vec4);
    for (i, &(n, inp, out, splits, launches)) in [(50, 20, 12, 3, 2), (257, 260, 36, 4, 2), (5, 8, 4, 9, 2), (40, 7, 12, 3, 1)].iter().enumerate() {
        let seed = 340 + 3 * i as u64;
        let dy = rounded(&uniform(seed, n * out, -1.0, 1.0));
        let x = rounded(&uniform(seed + 1, n * inp, -1.0, 1.0));
        let before = rounded(&uniform(seed + 2, out * inp + out, -1.0, 1.0));
        let (tdy, tx) = (upload("dy", &[n, out], &dy), upload("x", &[n, inp], &x));
        let (tg, partials) = (upload("grads", &[out * inp + out], &before), zeros("partials", &[splits * out, inp]));
        let dw = View::new(&tg.buffer, 0, out, inp);
        let run = nn::matmul_backward_weight_split(&g, "test", tdy.view(), tx.view(), dw, splits, Some(partials.view()));
        assert_eq!(run.len(), launches, "{out}x{n}·{n}x{inp} in {splits}");
        g.run("test", &run.iter().collect::<Vec<_>>());
        let mut want = before.clone();
        cpu::matmul_backward_weight(&dy, &x, n, inp, out, &mut want[..out * inp], None, false);
        assert_close(&format!("split dW {out}x{n}·{n}x{inp} in {splits}"), &read(&tg), &want, 1e-5 * (n as f64).sqrt(), MM_RTOL);
    }
}

#[test]
fn subgroup_backward_weight_falls_back_to_vec4_when_accumulating() {
    check_backward_weight_modes(MatmulImpl::Subgroup, &[(7, 100, 64), (63, 32, 128)], &[true], Kernel::MatmulBackwardWeightVec4);
}

fn batchnorm_setup(rows: usize, cols: usize, groups: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let x = rounded(&uniform(seed, rows * cols, -2.0, 3.0));
    let gamma = rounded(&uniform(seed + 1, cols, 0.5, 1.5));
    let beta = rounded(&uniform(seed + 2, cols, -0.5, 0.5));
    let state = rounded(&uniform(seed + 3, (2 * groups + 2) * cols, 0.5, 1.0));
    (x, gamma, beta, state)
}

#[test]
fn batchnorm_refuses_columns_longer_than_a_cpu_adapter_walks() {
    let g = gpu();
    let cpu = g.info.device_type == wgpu::DeviceType::Cpu;
    assert!(nn::check_column(g, "bn", nn::BATCHNORM_COLUMN_MOST).is_ok());
    let longer = nn::check_column(g, "bn", nn::BATCHNORM_COLUMN_MOST + 1);
    assert_eq!(longer.is_err(), cpu, "{longer:?}");
    if let Err(e) = longer {
        assert!(e.to_string().contains("smaller --batch or --size"), "{e}");
    }
}

#[test]
fn batchnorm_matches_reference_in_train_eval_and_backward_over_groups_and_windows() {
    // (batch, channels, pixels per channel, groups): BatchNorm1d where hw = 1, BatchNorm2d over
    // NCHW images otherwise (channels not multiples of 4, 7 and 49 pixels); the batch as 1–3
    // independently normalised groups (a discriminator's real and fake rows). The last cases'
    // columns hold 27,003 and 99,003 values (odd counts): three walks of one value an iteration
    // pass lavapipe's 65,535 loop iterations per invocation, which stopped the forward part-way,
    // and so did three walks of four at 99,003 (the first conv of 64 × 64 images at batch 128
    // walks 131,072).
    let cases = [(2, 1, 1, 1), (7, 17, 1, 1), (64, 100, 1, 2), (65, 33, 1, 1), (130, 20, 1, 2), (3, 5, 7, 1), (9, 3, 49, 3), (6, 5, 7, 2), (3, 2, 9001, 1), (3, 2, 33001, 1)];
    let g = gpu();
    for (i, &(batch, cols, hw, groups)) in cases.iter().enumerate() {
        let act = [Activation::LeakyRelu(0.2), Activation::Identity, Activation::Relu, Activation::Tanh, Activation::Sigmoid][i % 5];
        let (eps, momentum) = (0.8, 0.1);
        let (width, per_group) = (cols * hw, batch / groups);
        let (x, gamma, beta, state) = batchnorm_setup(batch * hw, cols, groups, 400 + i as u64);
        let weights: Vec<f64> = gamma.iter().chain(&beta).copied().collect();
        let (tx, tw, ts) = (upload("x", &[batch, width], &x), upload("weights", &[2 * cols], &weights), upload("state", &[state.len()], &state));
        let (ty, tdx) = (zeros("y", &[batch, width]), zeros("dx", &[batch, width]));
        let dy = rounded(&uniform(500 + i as u64, batch * width, -1.0, 1.0));
        let tdy = upload("dy", &[batch, width], &dy);
        let tgrads = zeros("grads", &[2 * cols]);
        let bn = BatchnormTensors { weights: &tw.buffer, gamma_off: 0, beta_off: cols, state: &ts.buffer, state_off: 0, capacity: groups, eps, momentum, act, hw };
        let fwd = nn::batchnorm_forward_train(g, "bn", &bn, groups, tx.view(), ty.view());
        let bwd = nn::batchnorm_backward(g, "bn", &bn, BatchGroups::new(groups), tx.view(), ty.view(), tdy.view(), tdx.view(), Some(&tgrads.buffer));
        g.run("bn", &[&fwd, &bwd]);

        // The reference normalises columns, one group at a time: NCHW channels made columns,
        // pixels made rows.
        let rows = per_group * hw;
        let group = |v: &[f64], k: usize| v[k * per_group * width..(k + 1) * per_group * width].to_vec();
        let cl = |v: &[f64]| cpu::transpose_blocks(v, per_group, cols, hw);
        let nchw = |v: &[f64]| cpu::transpose_blocks(v, per_group, hw, cols);
        let (mut rm, mut rv) = (state[2 * groups * cols..(2 * groups + 1) * cols].to_vec(), state[(2 * groups + 1) * cols..].to_vec());
        let y_gpu: Vec<f64> = read(&ty).iter().map(|&v| f64::from(v)).collect();
        let (mut want_y, mut want_dx, mut means, mut invstds, mut dgb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), vec![0.0; 2 * cols]);
        let mut saved_per_group = Vec::new();
        for k in 0..groups {
            let (y, saved) =
                cpu::batchnorm_forward_train(&cl(&group(&x, k)), &gamma, &beta, rows, cols, f64::from(eps), f64::from(momentum), act, &mut rm, &mut rv);
            want_y.extend(nchw(&y));
            let (dx, dgamma, dbeta) = cpu::batchnorm_backward(&cl(&group(&dy, k)), &cl(&group(&y_gpu, k)), &cl(&group(&x, k)), &gamma, &saved, rows, cols, act);
            want_dx.extend(nchw(&dx));
            dgb.iter_mut().zip(dgamma.iter().chain(&dbeta)).for_each(|(a, b)| *a += b);
            means.extend(saved.mean.clone());
            invstds.extend(saved.invstd.clone());
            saved_per_group.push((saved, nchw(&dx)));
        }
        let what = format!("batchnorm {batch}x{cols}x{hw} in {groups} groups {act}");
        assert_close(&format!("{what} y"), &read(&ty), &want_y, 1e-5, 1e-5);
        let want_state: Vec<f64> = means.iter().chain(&invstds).chain(&rm).chain(&rv).copied().collect();
        assert_close(&format!("{what} state"), &read(&ts), &want_state, 1e-5, 1e-5);
        assert_close(&format!("{what} dx"), &read(&tdx), &want_dx, 1e-4, 1e-4);
        assert_close(&format!("{what} dgamma|dbeta"), &read(&tgrads), &dgb, 1e-4, 1e-4);

        // The last group alone, as a backward over part of the batch: its rows of x and y, its
        // own statistics, and no parameter gradients written.
        let last = groups - 1;
        let (wdy, wdx) = (upload("dy.window", &[per_group, width], &group(&dy, last)), zeros("dx.window", &[per_group, width]));
        let (wx, wy) = (tx.view().rows(last * per_group, per_group), ty.view().rows(last * per_group, per_group));
        let window = nn::batchnorm_backward(g, "bn", &bn, BatchGroups { count: 1, first: last }, wx, wy, wdy.view(), wdx.view(), None);
        g.run("bn", &[&window]);
        assert_close(&format!("{what} dx of the last group"), &read(&wdx), &saved_per_group[last].1, 1e-4, 1e-4);
        assert_close(&format!("{what} dgamma|dbeta left alone"), &read(&tgrads), &dgb, 1e-4, 1e-4);

        let eval = nn::batchnorm_forward_eval(g, "bn", &bn, tx.view(), ty.view());
        g.run("bn", &[&eval]);
        let (cl_all, nchw_all) = (|v: &[f64]| cpu::transpose_blocks(v, batch, cols, hw), |v: &[f64]| cpu::transpose_blocks(v, batch, hw, cols));
        let want = cpu::batchnorm_forward_eval(&cl_all(&x), &gamma, &beta, batch * hw, cols, f64::from(eps), act, &rm, &rv);
        assert_close(&format!("{what} eval"), &read(&ty), &nchw_all(&want), 1e-5, 1e-5);
    }
}

#[test]
fn bce_logits_handles_soft_and_constant_targets_and_extreme_logits() {
    let g = gpu();
    for (i, &(rows, cols)) in [(1, 1), (3, 300), (128, 784), (257, 1)].iter().enumerate() {
        let mut logits = rounded(&uniform(600 + i as u64, rows * cols, -8.0, 8.0));
        logits[0] = 90.0; // exp(90) overflows f32: the stable form must not
        if logits.len() > 1 {
            logits[1] = -90.0;
        }
        let targets = rounded(&uniform(700 + i as u64, rows * cols, 0.0, 1.0));
        let scale = 1.0 / rows as f32;
        let (tl, tt) = (upload("logits", &[rows, cols], &logits), upload("targets", &[rows, cols], &targets));
        let (tg, tr) = (zeros("grad", &[rows, cols]), zeros("row_loss", &[rows]));
        let with_tensor = nn::bce_logits(g, "bce", tl.view(), Ok(tt.view()), scale, tg.view(), tr.view());
        g.run("bce", &[&with_tensor]);
        let (grad, rl) = cpu::bce_logits(&logits, &targets, rows, cols, f64::from(scale));
        assert_close("bce grad (tensor targets)", &read(&tg), &grad, 1e-6, 1e-5);
        assert_close("bce row_loss (tensor targets)", &read(&tr), &rl, 1e-4, 1e-5);

        let constant = nn::bce_logits(g, "bce", tl.view(), Err(0.9), scale, tg.view(), tr.view());
        g.run("bce", &[&constant]);
        let (grad, rl) = cpu::bce_logits(&logits, &vec![f64::from(0.9f32); rows * cols], rows, cols, f64::from(scale));
        assert_close("bce grad (label 0.9)", &read(&tg), &grad, 1e-6, 1e-5);
        assert_close("bce row_loss (label 0.9)", &read(&tr), &rl, 1e-4, 1e-5);
    }
}

#[test]
fn gan_loss_matches_reference_for_batches_above_one_workgroup_in_every_part() {
    use nn::GanLossParts::{Both, Discriminator, Generator};
    let g = gpu();
    for (i, &batch) in [1usize, 64, 300].iter().enumerate() {
        let logits = rounded(&uniform(800 + i as u64, 2 * batch, -6.0, 6.0));
        let want = cpu::gan_loss(&logits, batch, f64::from(0.9f32), 0.0);
        let m = want.metrics;
        let start = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0];
        // A part leaves the other's gradient (here a sentinel 7) and metrics alone.
        for parts in [Both, Discriminator, Generator] {
            let (with_d, with_g) = (parts != Generator, parts != Discriminator);
            let what = format!("batch {batch}, {parts:?}");
            let tl = if with_d { upload("logits", &[2 * batch], &logits) } else { upload("logits", &[batch], &logits[batch..]) };
            let (td, tg) = (upload("d_grad", &[2 * batch], &vec![7.0; 2 * batch]), upload("g_grad", &[batch], &vec![7.0; batch]));
            let metrics = upload("metrics", &[6], &start);
            let launch = nn::gan_loss(g, "gan", nn::GanLoss::Bce, parts, tl.view(), 0.9, 0.0, td.view(), tg.view(), &metrics.buffer, 1);
            g.run("gan", &[&launch]);
            let d_want = if with_d { want.d_grad.clone() } else { vec![7.0; 2 * batch] };
            let g_want = if with_g { want.g_grad.clone() } else { vec![7.0; batch] };
            assert_close(&format!("{what}: d_grad"), &read(&td), &d_want, 1e-7, 1e-5);
            assert_close(&format!("{what}: g_grad"), &read(&tg), &g_want, 1e-7, 1e-5);
            let (d, gm) = (f64::from(u8::from(with_d)), f64::from(u8::from(with_g)));
            let want_metrics = [0.5, 1.0 + d * m[0], 1.5 + gm * m[1], 2.0 + d * m[2], 2.5 + d * m[3], 3.0];
            assert_close(&format!("{what}: metrics (accumulated at slot 1)"), &read(&metrics), &want_metrics, 1e-5, 1e-5);
        }
    }
}

#[test]
fn reparam_kl_matches_reference_forward_and_backward() {
    let g = gpu();
    for (i, &(rows, latent)) in [(1, 1), (7, 32), (128, 32), (3, 300)].iter().enumerate() {
        let seed = 900 + 10 * i as u64;
        let stats = rounded(&uniform(seed, rows * 2 * latent, -2.0, 2.0));
        let eps = rounded(&uniform(seed + 1, rows * latent, -2.0, 2.0));
        let dz = rounded(&uniform(seed + 2, rows * latent, -1.0, 1.0));
        let (ts, te, tdz) = (upload("stats", &[rows, 2 * latent], &stats), upload("eps", &[rows, latent], &eps), upload("dz", &[rows, latent], &dz));
        let (tz, tkl, tds) = (zeros("z", &[rows, latent]), zeros("kl", &[rows]), zeros("dstats", &[rows, 2 * latent]));
        let fwd = nn::reparam_kl_forward(g, "kl", ts.view(), te.view(), tz.view(), tkl.view());
        let bwd = nn::reparam_kl_backward(g, "kl", ts.view(), te.view(), tdz.view(), tds.view(), 0.25);
        g.run("kl", &[&fwd, &bwd]);
        let (z, kl) = cpu::reparam_kl_forward(&stats, &eps, rows, latent);
        assert_close("reparam z", &read(&tz), &z, 1e-5, 1e-5);
        assert_close("kl per row", &read(&tkl), &kl, 1e-4, 1e-5);
        let d = cpu::reparam_kl_backward(&stats, &eps, &dz, rows, latent, 0.25);
        assert_close("reparam/kl backward", &read(&tds), &d, 1e-5, 1e-5);
    }
}

#[test]
fn sum_accumulate_reduces_lengths_not_multiple_of_workgroup() {
    let g = gpu();
    for &n in &[1usize, 255, 257, 10_001] {
        let values = rounded(&uniform(n as u64, n, -1.0, 1.0));
        let tv = upload("values", &[n], &values);
        let metrics = upload("metrics", &[3], &[1.0, 2.0, 3.0]);
        let launch = nn::sum_accumulate(g, "sum", tv.view(), &metrics.buffer, 2, 0.5);
        g.run("sum", &[&launch, &launch]);
        let mut want = vec![1.0, 2.0, 3.0];
        cpu::sum_accumulate(&values, &mut want, 2, 0.5);
        cpu::sum_accumulate(&values, &mut want, 2, 0.5);
        assert_close(&format!("sum of {n}"), &read(&metrics), &want, 1e-4, 1e-5);
    }
}

#[test]
fn adam_matches_torch_formula_over_several_steps_with_and_without_decay_on_a_block_and_under_a_decaying_lr() {
    let g = gpu();
    let plain = AdamConfig::new(1e-3, 0.9, 0.999);
    let decay = AdamConfig { weight_decay: 0.01, ..AdamConfig::new(2e-4, 0.5, 0.999) };
    // 1037 ends in a partial vec4: the padding lanes must leave real parameters alone. 64..1037
    // is one network's block (the GAN's D-first order): parameters outside it must not move.
    for (i, (cfg, range)) in [(plain, 0..1000), (decay, 0..1037), (plain, 64..1037)].into_iter().enumerate() {
        let n = range.end;
        let mut p = rounded(&uniform(1000 + i as u64, n, -1.0, 1.0));
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let (tp, tm, tv) = (upload("p", &[n], &p), zeros("m", &[n]), zeros("v", &[n]));
        let tgrad = zeros("grad", &[n]);
        let steps = StepBuffer::new(g, "adam", 1);
        let launch = nn::adam(g, "adam", &cfg, &steps.uniform, range.clone(), &tp.buffer, &tgrad.buffer, &tm.buffer, &tv.buffer);
        for t in 1..=5u32 {
            let grad = rounded(&uniform(2000 + u64::from(t), n, -1.0, 1.0));
            tgrad.write(g, &f32s(&grad));
            let (bc1, bc2) = cfg.bias_corrections(t);
            // The AdamW case under a linear decay of its rate (1, 0.8, …, 0.2): the step's factor
            // scales the update and the weight decay alike, as a torch scheduler's lr does.
            let lr_scale = if i == 1 { 1.0 - (t - 1) as f32 / 5.0 } else { 1.0 };
            steps.set(g, &Step { t, adam_bc1: bc1, adam_bc2: bc2, lr_scale, ..Step::default() });
            g.run("adam", &[&launch]);
            let r = range.clone();
            cpu::adam_scaled(&mut p[r.clone()], &grad[r.clone()], &mut m[r.clone()], &mut v[r], t, &cfg, f64::from(lr_scale));
        }
        // Each step moves a parameter by at most ~lr; f32 rounding of O(1) values dominates.
        let what = format!("adam over {range:?}");
        assert_close(&format!("{what}: params after 5 steps"), &read(&tp), &p, 1e-6, 1e-6);
        assert_close(&format!("{what}: m"), &read(&tm), &m, 1e-6, 1e-5);
        assert_close(&format!("{what}: v"), &read(&tv), &v, 1e-7, 1e-5);
    }
}

#[test]
fn ema_matches_cpu_through_warm_up_and_saturation_and_leaves_values_outside_its_block() {
    let g = gpu();
    // 1037 ends in a partial vec4; 64..1037 is a block of a larger buffer whose other values
    // must not move. Steps 1-3 are in the warm-up (decay 0.1, 0.18, 0.25), 9000 past it (0.999).
    for range in [0..1037, 64..1037] {
        let n = range.end;
        let mut avg = rounded(&uniform(3000, n, -1.0, 1.0));
        let tavg = upload("average", &[n], &avg);
        let tvalue = zeros("value", &[n]);
        let steps = StepBuffer::new(g, "ema", 1);
        let launch = nn::ema(g, "ema", 0.999, &steps.uniform, range.clone(), &tavg.buffer, &tvalue.buffer);
        for t in [1u32, 2, 3, 9000] {
            let value = rounded(&uniform(3000 + u64::from(t), n, -1.0, 1.0));
            tvalue.write(g, &f32s(&value));
            steps.set(g, &Step { t, ..Step::default() });
            g.run("ema", &[&launch]);
            cpu::ema(&mut avg[range.clone()], &value[range.clone()], 0.999, t);
        }
        // O(1) values lerped four times: f32 rounding of the decay and the products.
        assert_close(&format!("ema over {range:?}"), &read(&tavg), &avg, 1e-6, 1e-6);
    }
}

#[test]
fn gather_rows_scales_bytes_by_permutation() {
    let g = gpu();
    let (items, cols, rows) = (50usize, 29usize, 13usize); // odd row length: bytes straddle words
    let data: Vec<u8> = (0..items * cols).map(|i| (i * 37 % 256) as u8).collect();
    let order: Vec<u32> = (0..items as u32).rev().collect();
    let td = Tensor::from_bytes(g, "data", &[items, cols], &data).unwrap();
    let to = Tensor::from_bytes(g, "order", &[items], bytemuck::cast_slice(&order)).unwrap();
    let out = zeros("out", &[rows, cols]);
    let steps = StepBuffer::new(g, "gather", 1);
    steps.set(g, &Step { batch_start: 5, ..Step::default() });
    let launch = nn::gather_rows(g, "gather", &steps.uniform, &td.buffer, &to.buffer, out.view(), 2.0 / 255.0, -1.0);
    g.run("gather", &[&launch]);
    let want = cpu::gather_rows(&data, &order, 5, rows, cols, f64::from(2.0f32 / 255.0), -1.0);
    assert_close("gather [-1, 1]", &read(&out), &want, 1e-6, 0.0);
}

#[test]
fn fill_uniform_is_bit_exact_with_reference_philox() {
    let g = gpu();
    let n = 4099; // not a multiple of the 4-value Philox block
    let out = zeros("u", &[n]);
    let steps = StepBuffer::new(g, "rng", 1);
    steps.set(g, &Step { rng_step: 77, ..Step::default() });
    let launch = nn::fill_uniform(g, "rng", &steps.uniform, out.view(), 3, 0x1234_5678_9abc_def0);
    g.run("rng", &[&launch]);
    let want = cpu::fill_uniform(n, 3, 77, 0x1234_5678_9abc_def0);
    assert_close("fill_uniform", &read(&out), &want, 0.0, 0.0);
}

#[test]
fn fill_normal_matches_reference_box_muller() {
    let g = gpu();
    let n = 10_001;
    let out = zeros("z", &[n]);
    let steps = StepBuffer::new(g, "rng", 1);
    steps.set(g, &Step { rng_step: 5, ..Step::default() });
    let launch = nn::fill_normal(g, "rng", &steps.uniform, out.view(), 1, 42);
    g.run("rng", &[&launch]);
    let want = cpu::fill_normal(n, 1, 5, 42);
    // GPU log/cos/sin are not correctly rounded; values reach ~5.5.
    assert_close("fill_normal", &read(&out), &want, 1e-4, 1e-4);
}

#[test]
fn grids_over_the_per_axis_limit_fold_into_y_and_z() {
    assert_eq!(grid_1d(10, 65_535), [10, 1, 1]);
    assert_eq!(grid_1d(70_000, 65_535), [65_535, 2, 1]);
    assert_eq!(grid_1d(10, 3), [3, 3, 2]);
    assert_eq!(grid_1d(7, 3), [3, 3, 1]);
    assert_eq!(grid_1d(10, 2), [2, 2, 3]);
    // The kernels recover the linear index: run one with a tiny fake limit so its 1-D job
    // spreads over x, y and z exactly as one past 65,535 workgroups would.
    let g = gpu();
    let n = 9 * 1024 + 5;
    let out = zeros("u", &[n]);
    let steps = StepBuffer::new(g, "rng", 1);
    steps.set(g, &Step { rng_step: 1, ..Step::default() });
    let params = nn::RngParams { n: n as u32, stream: 9, seed_lo: 1, seed_hi: 0, offset: 0, classes: 0, _pad0: 0, _pad1: 0 };
    let groups = n.div_ceil(1024) as u32;
    let launch = Launch::new(
        g, Kernel::FillUniform, "folded", &params,
        &[Binding { slot: 1, buffer: &steps.uniform }, Binding { slot: 2, buffer: &out.buffer }],
        grid_1d(groups, 2),
    );
    assert_eq!(launch.grid(), [2, 2, 3]);
    g.run("folded", &[&launch]);
    assert_close("folded fill_uniform", &read(&out), &cpu::fill_uniform(n, 9, 1, 1), 0.0, 0.0);
}

#[test]
fn matmul_naive_baseline_matches_reference_in_forward_and_weight_layouts() {
    let g = gpu();
    let (n, inp, out) = (37, 70, 29);
    let x = rounded(&uniform(1100, n * inp, -1.0, 1.0));
    let wb = rounded(&uniform(1101, out * inp + out, -0.5, 0.5));
    let (tx, tw, ty) = (upload("x", &[n, inp], &x), upload("w", &[out * inp + out], &wb), zeros("y", &[n, out]));
    let w = View::new(&tw.buffer, 0, out, inp);
    let act = Activation::Tanh;
    let p = nn::forward_params("naive", tx.view(), w, Some(out * inp), ty.view(), act);
    g.run("naive", &[&nn::matmul_naive(g, "naive", p, true, &tx.buffer, &tw.buffer, &ty.buffer)]);
    let want = cpu::matmul_forward(&x, &wb[..out * inp], Some(&wb[out * inp..]), n, inp, out, act);
    assert_close("naive forward", &read(&ty), &want, MM_ATOL, MM_RTOL);

    let dy = rounded(&uniform(1102, n * out, -1.0, 1.0));
    let tdy = upload("dy", &[n, out], &dy);
    let tdw = zeros("dw", &[out, inp]);
    let p = nn::backward_weight_params("naive", tdy.view(), tx.view(), tdw.view(), None, false);
    g.run("naive", &[&nn::matmul_naive(g, "naive", p, false, &tdy.buffer, &tx.buffer, &tdw.buffer)]);
    let mut want = vec![0.0; out * inp];
    cpu::matmul_backward_weight(&dy, &x, n, inp, out, &mut want, None, false);
    assert_close("naive dW layout", &read(&tdw), &want, 1e-4, MM_RTOL);
}

#[test]
fn softmax_cross_entropy_matches_reference_with_ties_and_extreme_logits() {
    let g = gpu();
    for (i, &(rows, classes)) in [(1usize, 2usize), (7, 10), (130, 10), (3, 100)].iter().enumerate() {
        let mut logits = rounded(&uniform(1200 + i as u64, rows * classes, -5.0, 5.0));
        logits[0] = 80.0; // exp(80) overflows f32 unless the max is subtracted
        if classes > 2 {
            logits[classes + 1] = logits[classes]; // a tie: the lower index wins
        }
        let labels: Vec<usize> = (0..rows).map(|r| (r * 7 + i) % classes).collect();
        let labels_f: Vec<f64> = labels.iter().map(|&l| l as f64).collect();
        let (tl, tlab) = (upload("logits", &[rows, classes], &logits), upload("labels", &[rows], &labels_f));
        let (tg, tloss, tc) = (zeros("grad", &[rows, classes]), zeros("loss", &[rows]), zeros("correct", &[rows]));
        let scale = 1.0 / rows as f32;
        let xent = nn::softmax_cross_entropy(g, "xent", tl.view(), tlab.view(), scale, tg.view(), tloss.view(), tc.view());
        g.run("xent", &[&xent]);
        let (grad, loss, correct) = cpu::softmax_cross_entropy(&logits, &labels, rows, classes, f64::from(scale));
        assert_close("xent grad", &read(&tg), &grad, 1e-6, 1e-5);
        assert_close("xent loss", &read(&tloss), &loss, 1e-5, 1e-5);
        assert_close("xent correct", &read(&tc), &correct, 0.0, 0.0);
        let tp = zeros("probs", &[rows, classes]);
        g.run("softmax", &[&nn::softmax_rows(g, "softmax", tl.view(), tp.view())]);
        assert_close("softmax", &read(&tp), &cpu::softmax_rows(&logits, rows, classes), 1e-6, 1e-5);
    }
}

#[test]
fn gather_labels_follows_the_permutation() {
    let g = gpu();
    let labels: Vec<u8> = (0..37u8).map(|i| i % 10).collect();
    let order: Vec<u32> = (0..37u32).map(|i| (i * 11) % 37).collect();
    let tl = Tensor::from_bytes(g, "labels", &[37], &labels).unwrap();
    let to = Tensor::from_bytes(g, "order", &[37], bytemuck::cast_slice(&order)).unwrap();
    let out = zeros("out", &[13]);
    let steps = StepBuffer::new(g, "labels", 1);
    steps.set(g, &Step { batch_start: 9, ..Step::default() });
    g.run("labels", &[&nn::gather_labels(g, "labels", &steps.uniform, &tl.buffer, &to.buffer, out.view())]);
    assert_close("gathered labels", &read(&out), &cpu::gather_labels(&labels, &order, 9, 13), 0.0, 0.0);
}

#[test]
fn iwae_weights_and_logsumexp_match_reference_for_spread_out_values() {
    let g = gpu();
    let (images, k, latent) = (5usize, 300usize, 7usize); // k above one workgroup
    let rows = images * k;
    let stats = rounded(&uniform(1300, rows * 2 * latent, -2.0, 2.0));
    let eps = rounded(&uniform(1301, rows * latent, -2.0, 2.0));
    let z = rounded(&uniform(1302, rows * latent, -3.0, 3.0));
    // Reconstruction losses spread over hundreds of nats: exp() of them would underflow.
    let recon = rounded(&uniform(1303, rows, 80.0, 400.0));
    let (ts, te, tz, tr) = (upload("stats", &[rows, 2 * latent], &stats), upload("eps", &[rows, latent], &eps), upload("z", &[rows, latent], &z), upload("recon", &[rows], &recon));
    let (tw, tout) = (zeros("w", &[rows]), zeros("lse", &[images]));
    let weights = nn::iwae_log_weight(g, "iwae", ts.view(), te.view(), tz.view(), tr.view(), tw.view());
    let lse = nn::logsumexp_groups(g, "iwae", tw.view(), k, tout.view());
    g.run("iwae", &[&weights, &lse]);
    let w = cpu::iwae_log_weight(&stats, &eps, &z, &recon, rows, latent);
    assert_close("iwae log weights", &read(&tw), &w, 1e-4, 1e-6);
    let w_gpu: Vec<f64> = read(&tw).iter().map(|&v| f64::from(v)).collect();
    assert_close("log-sum-exp per group", &read(&tout), &cpu::logsumexp_groups(&w_gpu, k), 1e-4, 1e-6);
}

#[test]
fn embedding_forward_writes_table_rows_and_one_hots_into_a_column_window() {
    let g = gpu();
    // 37 rows (not a multiple of the 256-thread group), 7 classes of width 5, written into
    // columns 3..8 of a [37, 11] buffer whose other columns must survive.
    let (rows, classes, dim, width, at) = (37usize, 7usize, 5usize, 11usize, 3usize);
    let labels: Vec<usize> = (0..rows).map(|r| (r * 5 + 2) % classes).collect();
    // The labels sit after 3 others, as the fake rows' labels follow the real rows'.
    let stored: Vec<f64> = [0.0, 1.0, 2.0].into_iter().chain(labels.iter().map(|&c| c as f64)).collect();
    let tl = upload("labels", &[rows + 3], &stored);
    let tl_view = tl.view().rows(3, rows);
    let table = rounded(&uniform(1400, classes * dim, -1.0, 1.0));
    let tt = upload("table", &[classes, dim], &table);
    for one_hot in [false, true] {
        let dim = if one_hot { classes } else { dim };
        let out = Tensor::from_slice(g, "out", &[rows, width], &vec![9.0; rows * width]).unwrap();
        let vectors = if one_hot { nn::LabelVectors::OneHot } else { nn::LabelVectors::Table(tt.view()) };
        g.run("embed", &[&nn::embedding_forward(g, "embed", tl_view, vectors, out.view().columns(at, dim))]);
        let vecs = cpu::embedding_forward(&labels, if one_hot { None } else { Some(&table) }, dim);
        let mut want = vec![9.0; rows * width];
        for r in 0..rows {
            want[r * width + at..r * width + at + dim].copy_from_slice(&vecs[r * dim..(r + 1) * dim]);
        }
        assert_close(&format!("embedding_forward one_hot={one_hot}"), &read(&out), &want, 0.0, 0.0);
    }
    // Adding (z shifted by its class's prior mean) keeps what the window held.
    let out = Tensor::from_slice(g, "out", &[rows, width], &vec![9.0; rows * width]).unwrap();
    g.run("embed", &[&nn::embedding_add(g, "embed", tl_view, nn::LabelVectors::Table(tt.view()), out.view().columns(at, dim))]);
    let vecs = cpu::embedding_forward(&labels, Some(&table), dim);
    let mut want = vec![9.0; rows * width];
    for r in 0..rows {
        for j in 0..dim {
            want[r * width + at + j] += vecs[r * dim + j];
        }
    }
    assert_close("embedding_add", &read(&out), &want, 1e-6, 1e-6);
}

#[test]
fn one_hot_planes_fill_a_constant_channel_per_class_into_a_column_window() {
    let g = gpu();
    // 37 rows, 7 classes of 3×3 planes (63 values, not a multiple of anything the grid uses),
    // written into columns 4..67 of a [37, 70] buffer whose other columns must survive.
    let (rows, classes, plane, width, at) = (37usize, 7usize, 9usize, 70usize, 4usize);
    let labels: Vec<usize> = (0..rows).map(|r| (r * 3 + 1) % classes).collect();
    let tl = upload("labels", &[rows], &labels.iter().map(|&c| c as f64).collect::<Vec<_>>());
    let out = Tensor::from_slice(g, "out", &[rows, width], &vec![9.0; rows * width]).unwrap();
    let dim = classes * plane;
    let vectors = nn::LabelVectors::OneHotPlanes { plane };
    g.run("planes", &[&nn::embedding_forward(g, "planes", tl.view(), vectors, out.view().columns(at, dim))]);
    let planes = cpu::one_hot_planes(&labels, classes, plane);
    let mut want = vec![9.0; rows * width];
    for r in 0..rows {
        want[r * width + at..r * width + at + dim].copy_from_slice(&planes[r * dim..(r + 1) * dim]);
    }
    assert_close("one-hot planes", &read(&out), &want, 0.0, 0.0);
}

#[test]
fn embedding_backward_sums_strided_gradient_rows_per_class_and_zeroes_absent_classes() {
    let g = gpu();
    // 300 rows (more than a workgroup), gradient read from columns 4..13 of a [300, 17] buffer;
    // class 10 of 11 is never drawn.
    let (rows, classes, dim, width, at) = (300usize, 11usize, 9usize, 17usize, 4usize);
    let labels: Vec<usize> = (0..rows).map(|r| (r * 7 + r / 3) % (classes - 1)).collect();
    let stored: Vec<f64> = [10.0, 10.0].into_iter().chain(labels.iter().map(|&c| c as f64)).collect();
    let tl = upload("labels", &[rows + 2], &stored);
    let wide = rounded(&uniform(1410, rows * width, -1.0, 1.0));
    let tw = upload("d_out", &[rows, width], &wide);
    // The table's gradient sits inside a larger buffer, as in the flat gradient buffer.
    let grads = Tensor::from_slice(g, "grads", &[5 + classes * dim + 3], &vec![7.0; 5 + classes * dim + 3]).unwrap();
    let d_table = View::new(&grads.buffer, 5, classes, dim);
    g.run("embed", &[&nn::embedding_backward(g, "embed", tl.view().rows(2, rows), tw.view().columns(at, dim), d_table)]);
    let mut want = vec![7.0; 5];
    want.extend(cpu::embedding_backward(&labels, &cpu::columns(&wide, width, at, dim), classes, dim));
    want.extend([7.0; 3]);
    // Sums of ~30 values in [-1, 1], in the same order as the reference.
    assert_close("embedding_backward", &read(&grads), &want, 1e-5, 1e-6);
}

#[test]
fn class_logit_adds_the_shared_head_to_the_rows_class_head_and_routes_the_gradient_to_both() {
    let g = gpu();
    // 300 rows (more than a workgroup) of 1 + 9 heads read from columns 2..12 of a [300, 13]
    // buffer; the labels sit after 4 others, the logits in a column of a wider buffer.
    let (rows, classes, width, at) = (300usize, 9usize, 13usize, 2usize);
    let dim = 1 + classes;
    let labels: Vec<usize> = (0..rows).map(|r| (r * 5 + r / 7) % classes).collect();
    let stored: Vec<f64> = [8.0; 4].into_iter().chain(labels.iter().map(|&c| c as f64)).collect();
    let tl = upload("labels", &[rows + 4], &stored);
    let heads = rounded(&uniform(1415, rows * width, -1.0, 1.0));
    let th = upload("heads", &[rows, width], &heads);
    let logits = Tensor::from_slice(g, "logits", &[rows, 3], &vec![6.0; rows * 3]).unwrap();
    g.run("logit", &[&nn::class_logit_forward(g, "logit", tl.view().rows(4, rows), th.view().columns(at, dim), logits.view().columns(1, 1))]);
    let mut want = vec![6.0; rows * 3];
    for (r, v) in cpu::class_logit_forward(&labels, &cpu::columns(&heads, width, at, dim)).into_iter().enumerate() {
        want[r * 3 + 1] = v;
    }
    assert_close("class_logit_forward", &read(&logits), &want, 1e-6, 1e-6);

    let d_logits = rounded(&uniform(1416, rows, -1.0, 1.0));
    let td = upload("d_logits", &[rows, 1], &d_logits);
    let d_heads = Tensor::from_slice(g, "d_heads", &[rows, width], &vec![7.0; rows * width]).unwrap();
    g.run("logit", &[&nn::class_logit_backward(g, "logit", tl.view().rows(4, rows), td.view(), d_heads.view().columns(at, dim))]);
    let d = cpu::class_logit_backward(&labels, &d_logits, dim);
    let mut want = vec![7.0; rows * width];
    for r in 0..rows {
        want[r * width + at..r * width + at + dim].copy_from_slice(&d[r * dim..(r + 1) * dim]);
    }
    assert_close("class_logit_backward", &read(&d_heads), &want, 0.0, 0.0);
}

#[test]
fn copy_columns_moves_a_block_between_strided_windows() {
    let g = gpu();
    let (rows, cols) = (67usize, 13usize);
    let src = rounded(&uniform(1420, rows * 20, -1.0, 1.0));
    let ts = upload("src", &[rows, 20], &src);
    let td = Tensor::from_slice(g, "dst", &[rows, 31], &vec![5.0; rows * 31]).unwrap();
    g.run("copy", &[&nn::copy_columns(g, "copy", ts.view().columns(6, cols), td.view().columns(17, cols))]);
    let mut want = vec![5.0; rows * 31];
    for r in 0..rows {
        for j in 0..cols {
            want[r * 31 + 17 + j] = src[r * 20 + 6 + j];
        }
    }
    assert_close("copy_columns", &read(&td), &want, 0.0, 0.0);
}

#[test]
fn matmuls_read_a_column_window_of_the_weight_in_every_family() {
    // A conditioned layer's weight is [out, image | label]; its backward splits dX by columns.
    // The first window's odd stride sends every family to the tiled kernel; the second's
    // multiples of 4 let vec4 and subgroup kernels run it.
    let g = gpu();
    for (n, out, inp, at, part) in [(37usize, 29usize, 70usize, 61usize, 9usize), (37, 29, 72, 60, 12)] {
        let seed = 1430 + inp as u64;
        let w = rounded(&uniform(seed, out * inp, -1.0, 1.0));
        let dy = rounded(&uniform(seed + 1, n * out, -1.0, 1.0));
        let x = rounded(&uniform(seed + 2, n * part, -1.0, 1.0));
        let (tw, tdy, tx) = (upload("w", &[out, inp], &w), upload("dy", &[n, out], &dy), upload("x", &[n, part], &x));
        let w_part = cpu::columns(&w, inp, at, part);
        for family in [MatmulImpl::Tiled, MatmulImpl::Vec4, MatmulImpl::Subgroup] {
            let dx = zeros("dx", &[n, part]);
            let y = zeros("y", &[n, out]);
            let window = tw.view().columns(at, part);
            g.run(
                "window",
                &[
                    &nn::matmul_backward_input_with(g, family, "window", tdy.view(), window, dx.view(), None),
                    &nn::matmul_forward_with(g, family, "window", tx.view(), window, None, y.view(), Activation::Identity),
                ],
            );
            let what = format!("{family:?}, columns {at}..{} of {inp}", at + part);
            assert_close(&format!("{what}: dx"), &read(&dx), &cpu::matmul_backward_input(&dy, &w_part, None, n, part, out, Activation::Identity), MM_ATOL, MM_RTOL);
            assert_close(&format!("{what}: forward"), &read(&y), &cpu::matmul_forward(&x, &w_part, None, n, part, out, Activation::Identity), MM_ATOL, MM_RTOL);
        }
    }
}

/// Odd geometries: channels not multiples of 4, non-square images, padding 0 and 2, stride 1
/// and 2, a kernel wider than the stride and one as wide as the padded image, and channels
/// over 32 (two column blocks of the implicit products, 37 row blocks of the weight gradient).
fn conv_shapes() -> Vec<nn::ConvShape> {
    vec![
        nn::ConvShape::conv2d(3, 5, 9, 7, 3, 1, 0),
        nn::ConvShape::conv2d(2, 6, 8, 8, 4, 2, 1),
        nn::ConvShape::conv2d(5, 3, 7, 6, 3, 2, 2),
        nn::ConvShape::conv2d(1, 7, 5, 5, 5, 1, 0),
        nn::ConvShape::conv2d(37, 40, 9, 8, 4, 2, 1),
    ]
}

#[test]
fn im2col_and_col2im_match_reference_with_padding_strides_and_odd_channels() {
    let g = gpu();
    for (i, s) in conv_shapes().into_iter().enumerate() {
        let batch = 3;
        let x = rounded(&uniform(1500 + i as u64, batch * s.in_len(), -1.0, 1.0));
        let rows = batch * s.pixels();
        let cols = rounded(&uniform(1510 + i as u64, rows * s.patch(), -1.0, 1.0));
        // Both sit after 5 values of their buffers, as a half-batch window would.
        let tx = upload("x", &[5 + batch * s.in_len()], &[vec![9.0; 5], x.clone()].concat());
        let tc = upload("cols", &[5 + rows * s.patch()], &[vec![9.0; 5], cols.clone()].concat());
        let (out_cols, out_x) = (zeros("cols", &[rows, s.patch()]), zeros("x", &[batch, s.in_len()]));
        let x_view = View::new(&tx.buffer, 5, batch, s.in_len());
        let c_view = View::new(&tc.buffer, 5, rows, s.patch());
        g.run(
            "im2col",
            &[&nn::im2col(g, "im2col", &s, x_view, out_cols.view()), &nn::col2im(g, "col2im", &s, c_view, out_x.view(), nn::Epilogue::None)],
        );
        assert_close(&format!("im2col {s}"), &read(&out_cols), &cpu::im2col(&x, &s, batch), 0.0, 0.0);
        // Sums of at most k² values in [-1, 1].
        assert_close(&format!("col2im {s}"), &read(&out_x), &cpu::col2im(&cols, &s, batch), 1e-6, 1e-6);
    }
}

#[test]
fn transpose_blocks_and_channel_sum_handle_blocks_not_multiple_of_workgroup() {
    let g = gpu();
    let (batch, a, b) = (3usize, 7usize, 45usize);
    let src = rounded(&uniform(1520, batch * a * b, -1.0, 1.0));
    let prev = rounded(&uniform(1521, batch * a * b, -1.0, 1.0));
    let (ts, tp) = (upload("src", &[batch, a * b], &src), upload("prev", &[batch, a * b], &prev));
    let (plain, graded) = (zeros("dst", &[batch, a * b]), zeros("dst", &[batch, a * b]));
    let act = Activation::LeakyRelu(0.2);
    let sums = Tensor::from_slice(g, "grads", &[3 + a], &[1.0; 10]).unwrap();
    g.run(
        "transpose",
        &[
            &nn::transpose_blocks(g, "t", batch, a, b, ts.view(), plain.view(), None),
            &nn::transpose_blocks(g, "t", batch, a, b, ts.view(), graded.view(), Some((tp.view(), act))),
            &nn::channel_sum(g, "sum", a, b, ts.view(), &sums.buffer, 3, true),
        ],
    );
    let want = cpu::transpose_blocks(&src, batch, a, b);
    assert_close("transpose_blocks", &read(&plain), &want, 0.0, 0.0);
    let want_grad: Vec<f64> = want.iter().zip(&prev).map(|(v, &p)| v * cpu::activate_grad_from_output(p, act)).collect();
    assert_close("transpose_blocks ⊙ act'", &read(&graded), &want_grad, 1e-7, 1e-7);
    let mut want_sums = vec![1.0; 3];
    want_sums.extend(cpu::channel_sum(&src, batch, a, b).iter().map(|s| s + 1.0));
    // Sums of 135 values in [-1, 1], tree-ordered on the GPU.
    assert_close("channel_sum, accumulated", &read(&sums), &want_sums, 1e-5, 1e-5);
}

/// One conv layer — a Conv2d of `s`, or with `transposed` the ConvTranspose2d that `s`
/// describes — on the GPU as training runs it (forward with `act`; dW and db; dX through the
/// previous layer's `prev_act`), weight and bias in one buffer as in the flat parameter buffer,
/// against the direct-loop twins, on device `g` with every product on the path `plan` names.
fn check_conv_layer((g, plan): (&Gpu, nn::ConvPlan), s: nn::ConvShape, transposed: bool, act: Activation, prev_act: Activation, seed: u64, batch: usize) {
    // A ConvTranspose2d's bias has one value per output channel: the Conv2d's in_ch.
    let (inp, out, bias_len) = if transposed { (s.out_len(), s.in_len(), s.in_ch) } else { (s.in_len(), s.out_len(), s.out_ch) };
    let nw = s.out_ch * s.patch();
    let bound = 1.0 / (s.patch() as f64).sqrt();
    let wb = rounded(&uniform(seed, nw + bias_len, -bound, bound));
    let (w, b) = wb.split_at(nw);
    let x = rounded(&uniform(seed + 1, batch * inp, -1.0, 1.0));
    let dy = rounded(&uniform(seed + 2, batch * out, -1.0, 1.0));
    // The input as the previous layer's activated output, for the fused act'.
    let prev = rounded(&x.iter().map(|&v| cpu::activate(v, prev_act)).collect::<Vec<_>>());
    let (tw, tx, tdy, tp) =
        (upload("wb", &[wb.len()], &wb), upload("x", &[batch, inp], &x), upload("dy", &[batch, out], &dy), upload("prev", &[batch, inp], &prev));
    let (y, dx, grads) = (zeros("y", &[batch, out]), zeros("dx", &[batch, inp]), zeros("grads", &[wb.len()]));
    let fwd = nn::ConvBuffers::new(g, "conv", &s, plan, transposed, false, batch).unwrap();
    let bwd = nn::ConvBuffers::new(g, "conv.grad", &s, plan, transposed, true, batch).unwrap();
    let (fs, bs, saved) = (fwd.scratch(), bwd.scratch(), fwd.saved(&s, transposed, 0, batch));
    let (wv, dw) = (View::new(&tw.buffer, 0, s.out_ch, s.patch()), View::new(&grads.buffer, 0, s.out_ch, s.patch()));
    let (weights, dx_to) = (Some((dw, Some(nw))), Some((dx.view(), Some((tp.view(), prev_act)))));
    let mut launches = match transposed {
        false => nn::conv2d_forward(g, "conv", &s, tx.view(), wv, Some(nw), &fs, y.view(), act),
        true => nn::conv_transpose2d_forward(g, "conv", &s, tx.view(), wv, Some(nw), &fs, y.view(), act),
    };
    launches.extend(match transposed {
        false => nn::conv2d_backward(g, "conv", &s, tdy.view(), wv, tx.view(), saved, &bs, weights, dx_to),
        true => nn::conv_transpose2d_backward(g, "conv", &s, tdy.view(), wv, tx.view(), saved, &bs, weights, dx_to),
    });
    // The vec4 family splits an im2col weight gradient whose product is whole vec4s.
    let split = g.matmul == MatmulImpl::Vec4 && plan.weight == nn::ConvPath::Im2col && plan.splits > 1 && s.out_ch.is_multiple_of(4) && s.patch().is_multiple_of(4);
    assert_eq!(launches.iter().any(|l| l.kernel == Kernel::MatmulReduceSplitsVec4), split, "{s} on {plan:?}: split-K");
    g.run("conv", &launches.iter().collect::<Vec<_>>());

    let mut want = vec![0.0; wb.len()];
    let (dw_want, db_want) = want.split_at_mut(nw);
    let (y_want, dx_want) = match transposed {
        false => {
            cpu::conv2d_backward_weight(&dy, &x, &s, batch, dw_want, Some(db_want));
            (cpu::conv2d_forward(&x, w, Some(b), &s, batch, act), cpu::conv2d_backward_input(&dy, w, Some(&prev), &s, batch, prev_act))
        }
        true => {
            cpu::conv_transpose2d_backward_weight(&dy, &x, &s, batch, dw_want, Some(db_want));
            (
                cpu::conv_transpose2d_forward(&x, w, Some(b), &s, batch, act),
                cpu::conv_transpose2d_backward_input(&dy, w, Some(&prev), &s, batch, prev_act),
            )
        }
    };
    let what = format!("{} of {s} {act} on {plan:?}", if transposed { "conv_transpose2d" } else { "conv2d" });
    // Sums of at most patch (≤ 592) or out_ch·k² (≤ 640) products forward and for dX, of
    // batch·pixels (≤ 189) for dW.
    assert_close(&format!("{what}: y"), &read(&y), &y_want, MM_ATOL, MM_RTOL);
    assert_close(&format!("{what}: dw, db"), &read(&grads), &want, 1e-4, 1e-4);
    assert_close(&format!("{what}: dx"), &read(&dx), &dx_want, MM_ATOL, MM_RTOL);
}

/// The plans a conv layer is checked under, each with the device it runs on: im2col
/// throughout, on the adapter's family and on vec4 with the weight gradient split in 2 and 3
/// chunks (the last one short; shapes whose product is no whole vec4s run it unsplit); every
/// product implicit with the weight gradient in 1, 2 and 3 chunks; the input product on im2col
/// beside implicit others, as `ConvPlan::for_layer` has it below 4 input channels.
fn conv_plans() -> Vec<(&'static Gpu, nn::ConvPlan)> {
    static VEC4: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    let vec4 = VEC4.get_or_init(|| gpu().with_matmul(MatmulImpl::Vec4));
    let im2col = nn::ConvPlan::IM2COL;
    let implicit = nn::ConvPlan { output: nn::ConvPath::Implicit, input: nn::ConvPath::Implicit, weight: nn::ConvPath::Implicit, splits: 1 };
    let mut plans = vec![(gpu(), im2col), (vec4, nn::ConvPlan { splits: 2, ..im2col }), (vec4, nn::ConvPlan { splits: 3, ..im2col })];
    if gpu().subgroup_matmul {
        plans.extend([
            (gpu(), implicit),
            (gpu(), nn::ConvPlan { splits: 2, ..implicit }),
            (gpu(), nn::ConvPlan { splits: 3, input: nn::ConvPath::Im2col, ..implicit }),
        ]);
    }
    plans
}

#[test]
fn plans_keep_narrow_input_products_on_im2col_split_short_wide_weight_sums_and_obey_wgen_conv() {
    let g = gpu();
    let conv1 = nn::ConvShape::conv2d(1, 64, 28, 28, 4, 2, 1);
    let conv2 = nn::ConvShape::conv2d(64, 128, 14, 14, 4, 2, 1);
    assert_eq!(nn::ConvPlan::for_layer(&g.with_conv(false), &conv2, 128), nn::ConvPlan::IM2COL, "WGEN_CONV=im2col");
    if g.subgroup_matmul {
        let (narrow, wide) = (nn::ConvPlan::for_layer(g, &conv1, 128), nn::ConvPlan::for_layer(g, &conv2, 128));
        assert_eq!((narrow.output, narrow.input, narrow.weight), (nn::ConvPath::Implicit, nn::ConvPath::Im2col, nn::ConvPath::Implicit));
        assert_eq!((wide.output, wide.input, wide.weight), (nn::ConvPath::Implicit, nn::ConvPath::Implicit, nn::ConvPath::Implicit));
        // conv1's dW is 16 × 64 outputs, 2 blocks: split; conv2's 1024 × 128 is 256 blocks.
        assert!(narrow.splits > 1 && wide.splits <= narrow.splits, "{narrow:?} {wide:?}");
    }
    // On im2col the vec4 family splits a weight gradient whose product is whole vec4s.
    let vec4 = g.with_matmul(MatmulImpl::Vec4);
    let plan = nn::ConvPlan::for_layer(&vec4, &conv1, 128);
    assert!(plan.weight == nn::ConvPath::Im2col && plan.splits > 1, "vec4: {plan:?}");
    assert_eq!(nn::ConvPlan::for_layer(&vec4, &nn::ConvShape::conv2d(3, 6, 12, 12, 3, 1, 1), 128), nn::ConvPlan::IM2COL, "27-wide patch");
    // Chunks are whole vec4s of pixels and cover them; a request can come out fewer.
    for (pixels, asked, chunk, count) in [(10, 3, 4, 3), (8, 3, 4, 2), (25_088, 4, 6272, 4), (5, 1, 8, 1), (7, 9, 4, 2)] {
        assert_eq!(nn::split_chunks(pixels, asked), (chunk, count), "{pixels} pixels in {asked}");
    }
}

#[test]
fn conv2d_matches_reference_forward_weight_and_input_gradients_on_odd_shapes() {
    for (i, s) in conv_shapes().into_iter().enumerate() {
        let act = ACTIVATIONS[i % (ACTIVATIONS.len() - 1) + 1];
        for (j, on) in conv_plans().into_iter().enumerate() {
            // Batch 1 once per shape: a single image's rows and chunks.
            check_conv_layer(on, s, false, act, act, 1530 + 10 * i as u64, if j == 3 { 1 } else { 3 });
        }
    }
}

#[test]
fn conv_transpose2d_matches_reference_forward_weight_and_input_gradients_on_odd_shapes() {
    let shapes = [
        nn::ConvShape::transposed(5, 3, 4, 3, 3, 2, 1),
        nn::ConvShape::transposed(6, 2, 3, 5, 4, 2, 1),
        nn::ConvShape::transposed(3, 7, 5, 4, 3, 1, 2),
        nn::ConvShape::transposed(2, 1, 7, 7, 4, 2, 1),
        nn::ConvShape::transposed(36, 33, 4, 5, 4, 2, 1),
    ];
    for (i, s) in shapes.into_iter().enumerate() {
        for (j, on) in conv_plans().into_iter().enumerate() {
            check_conv_layer(on, s, true, ACTIVATIONS[(i + 2) % ACTIVATIONS.len()], Activation::Tanh, 1580 + 10 * i as u64, if j == 3 { 1 } else { 3 });
        }
    }
}

#[test]
fn shift_images_moves_each_image_by_its_own_draw_with_zeros_shifted_in() {
    let g = gpu();
    // 7 images of 2 channels, 5×6: no size a multiple of the 256-thread workgroup; offsets up to
    // 2 move some images' content off the edge in both directions.
    let (rows, dims, most) = (7usize, (2usize, 5usize, 6usize), 2usize);
    let cols = dims.0 * dims.1 * dims.2;
    let input: Vec<f32> = (0..rows * cols).map(|i| 1.0 + i as f32).collect();
    let tin = Tensor::from_slice(g, "in", &[rows, cols], &input).unwrap();
    let shifts = zeros("shifts", &[rows, 2]);
    let out = zeros("out", &[rows, cols]);
    let steps = StepBuffer::new(g, "shift", 1);
    steps.set(g, &Step { rng_step: 3, ..Step::default() });
    let draw = nn::fill_labels(g, "draw", &steps.uniform, shifts.view(), 2 * most + 1, 9, 41);
    let shift = nn::shift_images(g, "shift", shifts.view(), tin.view(), out.view(), dims, most);
    g.run("shift", &[&draw, &shift]);
    let drawn: Vec<f64> = read(&shifts).into_iter().map(f64::from).collect();
    let want_draws: Vec<f64> = cpu::fill_labels(2 * rows, 2 * most + 1, 9, 3, 41).into_iter().map(|v| v as f64).collect();
    assert_eq!(drawn, want_draws, "the offsets are fill_labels' draws");
    assert!(drawn.iter().any(|&d| d < most as f64) && drawn.iter().any(|&d| d > most as f64), "draws on both sides of zero: {drawn:?}");
    let x: Vec<f64> = input.iter().map(|&v| f64::from(v)).collect();
    // A copy: exact.
    assert_close("shifted images", &read(&out), &cpu::shift_images(&x, &drawn, dims, most), 0.0, 0.0);
}

#[test]
fn diff_augment_matches_reference_forward_and_backward_for_every_policy_on_odd_sizes_and_colour() {
    use nn::AugmentPolicy;
    let g = gpu();
    // 9 images of 13×13 grey or 7×7 colour: neither side a multiple of 8 (the shift's eighth)
    // nor an even cutout; rows carry 5 extra columns (a conditioned D's labels), copied as
    // they are. The draws cover shifts both ways and cutouts over every edge.
    let policies = [
        AugmentPolicy { translation: true, ..AugmentPolicy::default() },
        AugmentPolicy { cutout: true, ..AugmentPolicy::default() },
        AugmentPolicy { color: true, ..AugmentPolicy::default() },
        AugmentPolicy { color: true, translation: true, cutout: true },
    ];
    let rows = 9;
    for (i, (channels, side)) in [(1usize, 13usize), (3, 7)].into_iter().enumerate() {
        let n = channels * side * side;
        let stride = n + 5;
        let seed = 1300 + 10 * i as u64;
        let input = rounded(&uniform(seed, rows * stride, -1.0, 1.0));
        let draws = rounded(&uniform(seed + 1, rows * nn::AUGMENT_DRAWS, 0.001, 0.999));
        let dy = rounded(&uniform(seed + 2, rows * n, -1.0, 1.0));
        let fake = rounded(&uniform(seed + 3, (rows + 2) * n, -0.99, 0.99));
        let (tin, tdraws, tdy, tfake) = (upload("in", &[rows, stride], &input), upload("draws", &[rows + 1, 8], &[vec![0.5; 8], draws.clone()].concat()), upload("dy", &[rows, n], &dy), upload("fake", &[rows + 2, n], &fake));
        let images: Vec<f64> = input.chunks(stride).flat_map(|r| r[..n].to_vec()).collect();
        let prev = &fake[2 * n..];
        for policy in policies {
            let what = format!("{policy} on {channels}×{side}×{side}");
            let (out, dx) = (zeros("out", &[rows, stride]), zeros("dx", &[rows, n]));
            // The draws and the activation start a row or two into their buffers.
            let (d, y) = (tdraws.view().rows(1, rows), tfake.view().rows(2, rows));
            let forward = nn::diff_augment(g, "augment", policy, d, tin.view(), out.view(), (channels, side));
            let backward = nn::diff_augment_backward(g, "augment", policy, d, tdy.view(), dx.view(), Some((y, Activation::Tanh)), (channels, side));
            g.run("augment", &[&forward, &backward]);
            let want = cpu::diff_augment(&images, &draws, policy, (channels, side));
            let got = read(&out);
            let got_images: Vec<f32> = got.chunks(stride).flat_map(|r| r[..n].to_vec()).collect();
            // A few sums of ≤ 3·169 values of O(1).
            assert_close(&format!("{what}: images"), &got_images, &want, 1e-5, 1e-5);
            let got_extra: Vec<f32> = got.chunks(stride).flat_map(|r| r[n..].to_vec()).collect();
            let want_extra: Vec<f64> = input.chunks(stride).flat_map(|r| r[n..].to_vec()).collect();
            assert_close(&format!("{what}: the columns after the image"), &got_extra, &want_extra, 0.0, 0.0);
            let back = cpu::diff_augment_backward(&dy, &draws, policy, (channels, side));
            let want_dx: Vec<f64> = back.iter().zip(prev).map(|(d, y)| d * (1.0 - y * y)).collect();
            assert_close(&format!("{what}: gradient times tanh′"), &read(&dx), &want_dx, 1e-5, 1e-5);
            if policy.translation || policy.cutout {
                assert!(want.iter().filter(|&&v| v == 0.0).count() >= rows, "{what}: some values are dropped");
            }
        }
    }
}

#[test]
fn gan_hinge_loss_matches_reference_across_both_margins_in_every_part() {
    use nn::GanLossParts::{Both, Discriminator, Generator};
    let g = gpu();
    for (i, &batch) in [3usize, 300].iter().enumerate() {
        // Logits on both sides of ±1, where the hinge's gradient switches off.
        let logits = rounded(&uniform(850 + i as u64, 2 * batch, -3.0, 3.0));
        let want = cpu::gan_hinge_loss(&logits, batch);
        for parts in [Both, Discriminator, Generator] {
            let (with_d, with_g) = (parts != Generator, parts != Discriminator);
            let what = format!("hinge, batch {batch}, {parts:?}");
            let tl = if with_d { upload("logits", &[2 * batch], &logits) } else { upload("logits", &[batch], &logits[batch..]) };
            let (td, tg) = (upload("d_grad", &[2 * batch], &vec![7.0; 2 * batch]), upload("g_grad", &[batch], &vec![7.0; batch]));
            let metrics = zeros("metrics", &[4]);
            let launch = nn::gan_loss(g, "gan", nn::GanLoss::Hinge, parts, tl.view(), 1.0, 0.0, td.view(), tg.view(), &metrics.buffer, 0);
            g.run("gan", &[&launch]);
            if with_d {
                assert_close(&format!("{what}: d_grad"), &read(&td), &want.d_grad, 1e-7, 1e-5);
                let m = read(&metrics);
                assert_close(&format!("{what}: d_loss, D(x), D(G(z))"), &[m[0], m[2], m[3]], &[want.metrics[0], want.metrics[2], want.metrics[3]], 1e-5, 1e-5);
            }
            if with_g {
                assert_close(&format!("{what}: g_grad"), &read(&tg), &want.g_grad, 1e-7, 1e-5);
                assert_close(&format!("{what}: g_loss"), &read(&metrics)[1..2], &want.metrics[1..2], 1e-5, 1e-5);
            }
        }
        assert!(want.d_grad.contains(&0.0) && want.d_grad.iter().any(|&d| d != 0.0), "both sides of the margin");
    }
}

#[test]
fn spectral_norm_power_iteration_scaling_and_backward_match_cpu_in_every_matmul_family_one_and_many_partial_sums() {
    let g = gpu();
    // Shapes no tile divides: a single row (a logit's weight), a few hundred weights (one
    // partial sum of ⟨G, W_sn⟩), 83 partial sums, and the most (256) of more than 256 each.
    for (rows, cols) in [(1, 37), (5, 37), (70, 300), (300, 1100)] {
        for family in g.matmul_families() {
            let gf = g.with_matmul(family);
            let n = rows * cols;
            // W in a larger buffer after 64 other values, its bias (3 values) copied after it.
            let (w_off, extra) = (64, 3);
            let values_host = rounded(&uniform(70 + rows as u64, w_off + n + extra, -1.0, 1.0));
            let grads_host = rounded(&uniform(80 + rows as u64, w_off + n + extra, -1.0, 1.0));
            let (u_off, v_off) = (0, rows.div_ceil(64) * 64);
            let mut u = rounded(&uniform(90, rows, -1.0, 1.0));
            let mut v = rounded(&uniform(91, cols, -1.0, 1.0));
            let state_host: Vec<f64> = u.iter().copied().chain(vec![0.0; v_off - rows]).chain(v.iter().copied()).collect();
            let values = upload("values", &[values_host.len()], &values_host);
            let grads = upload("grads", &[grads_host.len()], &grads_host);
            let state = upload("state", &[state_host.len()], &state_host);
            let normalised = zeros("normalised", &[values_host.len()]);
            let scratch = zeros("scratch", &[nn::spectral_scratch_len(rows, cols)]);
            let t = nn::SpectralTensors {
                values: &values.buffer, normalised: &normalised.buffer, grads: &grads.buffer, state: &state.buffer, scratch: &scratch.buffer,
                w_off, rows, cols, u_off, v_off,
            };
            let mut launches = nn::spectral_power(&gf, "w", &t);
            launches.push(nn::spectral_scale(&gf, "w", &t, n + extra));
            launches.extend(nn::spectral_backward(&gf, "w", &t));
            gf.run("spectral", &launches.iter().collect::<Vec<_>>());

            let w = &values_host[w_off..w_off + n];
            let sigma = cpu::spectral_power(w, rows, cols, &mut u, &mut v);
            let what = format!("{rows}x{cols} {family:?}");
            let got_state = read(&state);
            // Unit vectors from sums of `cols` (or `rows`) products: matmul rounding.
            assert_close(&format!("{what} u"), &got_state[..rows], &u, 1e-5, 1e-4);
            assert_close(&format!("{what} v"), &got_state[v_off..v_off + cols], &v, 1e-5, 1e-4);
            assert_close(&format!("{what} sigma"), &read(&scratch)[rows.max(cols)..][..1], &[sigma], 1e-5, 1e-5);
            let mut want: Vec<f64> = w.iter().map(|x| x / sigma).collect();
            want.extend(&values_host[w_off + n..]);
            assert_close(&format!("{what} W / sigma and the bias copied"), &read(&normalised)[w_off..], &want, 1e-5, 1e-5);
            let mut want_grads = grads_host.clone();
            want_grads[w_off..w_off + n].copy_from_slice(&cpu::spectral_backward(&grads_host[w_off..w_off + n], w, &u, &v, sigma));
            // ⟨G, W_sn⟩ sums up to 330,000 products of O(1) values.
            assert_close(&format!("{what} dW, the rest untouched"), &read(&grads), &want_grads, 1e-4, 1e-4);
        }
    }
}
