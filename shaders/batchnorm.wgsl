// Batch normalisation, as torch.nn.BatchNorm1d over the rows of a [batch, cols] batch, or
// BatchNorm2d over the batch and pixels of NCHW images ([batch, cols·hw] rows, channel c at
// columns c·hw..(c + 1)·hw), in training and evaluation modes, with the activation that follows
// it fused in. `cols` are the channels, `rows` the values per channel (batch·hw); value r of
// channel c is at at(r, c), which for hw = 1 is r·cols + c.
// The rows may be `groups` equal batches normalised independently, as separate calls of the
// module would: a GAN's discriminator sees [real; fake] in one pass, with PyTorch's statistics
// of the real batch and of the fake batch (the running statistics take the groups in order).
//   batchnorm_forward_train  y = act(gamma * (x - mean) * invstd + beta) with batch statistics
//                            (biased variance); saves mean and invstd for the backward pass and
//                            updates the running statistics with the unbiased variance.
//   batchnorm_forward_eval   the same with the running statistics.
//   batchnorm_backward       dx, and (WRITE_GRADS) dgamma, dbeta summed over the groups, from
//                            dy, the gradient of y; x and y may be a window of whole groups of
//                            the forward pass (from x_off, groups first_group..).
// state holds, from state_off: saved_mean [capacity, cols], saved_invstd [capacity, cols],
// running_mean [cols], running_var [cols]. gamma and beta live in the flat parameter buffer
// (weights); their gradients at the same offsets in the flat gradient buffer (grads).
// Bindings: 0 params (BatchNormParams), 1 x (read), 2 weights (read), 3 state (read_write),
//           4 y (read_write), 5 dy (read), 6 dx (read_write), 7 grads (read_write)
// Grid: train and backward: one thread per column, 64 per workgroup, folded over x and y; each
//       thread walks its column's rows (a batch: tens to hundreds; times the pixels for a conv
//       layer: tens of thousands, see UNROLL), so there is no barrier. A
//       column shared by 16 lanes and tree-reduced took 12 barriers per workgroup, and was 3×
//       slower on lavapipe.
//       eval: one thread per element, 256 per workgroup, folded over x and y.

const WRITE_GRADS: u32 = 1u;

struct BatchNormParams {
    rows: u32,
    cols: u32,
    act: u32,
    slope: f32,
    eps: f32,
    momentum: f32,
    gamma_off: u32,
    beta_off: u32,
    state_off: u32,
    hw: u32,          // 1 for BatchNorm1d; pixels per channel for BatchNorm2d
    groups: u32,      // independent batches in `rows`
    capacity: u32,    // groups the saved statistics have room for
    first_group: u32, // backward: the first group's slot in the saved statistics
    x_off: u32,       // backward: where the window starts in x and y
    flags: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: BatchNormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<f32>;

fn at(r: u32, c: u32) -> u32 {
    return (r / p.hw * p.cols + c) * p.hw + r % p.hw;
}

fn saved_mean(group: u32, c: u32) -> u32 {
    return p.state_off + group * p.cols + c;
}

fn saved_invstd(group: u32, c: u32) -> u32 {
    return p.state_off + (p.capacity + group) * p.cols + c;
}

fn running_mean(c: u32) -> u32 {
    return p.state_off + 2u * p.capacity * p.cols + c;
}

fn running_var(c: u32) -> u32 {
    return running_mean(c) + p.cols;
}

// llvmpipe (lavapipe) ends an invocation's loops after 65,535 iterations, all its loops
// counted together, and carries on as if they had finished. A column of a conv layer's batch
// norm holds batch × pixels values (25,088 at batch 128 on 14 × 14; 131,072 on 32 × 32, the
// first conv of a 64 × 64 image) and the forward walks it three times, so the walks take UNROLL
// values an iteration, in order (the same sums as one at a time): up to ~174,000 values a column
// then fit (`nn::BATCHNORM_COLUMN_MOST` refuses more on a CPU adapter).
const UNROLL: u32 = 8u;

// x at value r of a column, or 0 past the group's end (adding 0 leaves a sum as it was).
fn x_or_zero(r: u32, end: u32, col: u32) -> f32 {
    if r < end {
        return x[at(r, col)];
    }
    return 0.0;
}

fn deviate(r: u32, end: u32, col: u32, rough: f32, d: ptr<function, f32>, q: ptr<function, f32>) {
    if r < end {
        let dev = x[at(r, col)] - rough;
        *d += dev;
        *q += dev * dev;
    }
}

fn normalise(r: u32, end: u32, col: u32, mean: f32, invstd: f32, gamma: f32, beta: f32) {
    if r < end {
        let i = at(r, col);
        y[i] = activate(gamma * (x[i] - mean) * invstd + beta, p.act, p.slope);
    }
}

// The gradient at the activation's input of value r (backward: x and y from x_off).
fn act_input_gradient(i: u32) -> f32 {
    return dy[i] * activate_grad_from_output(y[p.x_off + i], p.act, p.slope);
}

fn gradient_sums(r: u32, end: u32, col: u32, mean: f32, invstd: f32, sum_g: ptr<function, f32>, sum_g_xhat: ptr<function, f32>) {
    if r < end {
        let i = at(r, col);
        let grad = act_input_gradient(i);
        *sum_g += grad;
        *sum_g_xhat += grad * (x[p.x_off + i] - mean) * invstd;
    }
}

// dx = k·(n·g − Σg − x̂·Σg·x̂).
fn input_gradient(r: u32, end: u32, col: u32, mean: f32, invstd: f32, k: f32, n: f32, sum_g: f32, sum_g_xhat: f32) {
    if r < end {
        let i = at(r, col);
        let xhat = (x[p.x_off + i] - mean) * invstd;
        dx[i] = k * (n * act_input_gradient(i) - sum_g - xhat * sum_g_xhat);
    }
}

@compute @workgroup_size(64)
fn batchnorm_forward_train(@builtin(workgroup_id) wid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) tid: u32) {
    let col = linear_workgroup(wid, nwg) * 64u + tid;
    if col >= p.cols {
        return;
    }
    let per_group = p.rows / p.groups;
    let n = f32(per_group);
    let gamma = weights[p.gamma_off + col];
    let beta = weights[p.beta_off + col];
    for (var g = 0u; g < p.groups; g++) {
        let r0 = g * per_group;
        let end = r0 + per_group;
        var s = 0.0;
        for (var r = r0; r < end; r += UNROLL) {
            s += x_or_zero(r, end, col);
            s += x_or_zero(r + 1u, end, col);
            s += x_or_zero(r + 2u, end, col);
            s += x_or_zero(r + 3u, end, col);
            s += x_or_zero(r + 4u, end, col);
            s += x_or_zero(r + 5u, end, col);
            s += x_or_zero(r + 6u, end, col);
            s += x_or_zero(r + 7u, end, col);
        }
        let rough = s / n;
        // A second pass for the variance, which avoids E[x²] - E[x]² cancellation, also sums the
        // deviations from the first mean to correct it (the corrected two-pass algorithm): an f32
        // sum of thousands of values (a conv channel over batch × pixels, most of them the same
        // blank-background value) is off by ~n·ε of their size, which against a small spread
        // put every normalised value of a 24 × 196 batch 1e-4 off.
        var d = 0.0;
        var q = 0.0;
        for (var r = r0; r < end; r += UNROLL) {
            deviate(r, end, col, rough, &d, &q);
            deviate(r + 1u, end, col, rough, &d, &q);
            deviate(r + 2u, end, col, rough, &d, &q);
            deviate(r + 3u, end, col, rough, &d, &q);
            deviate(r + 4u, end, col, rough, &d, &q);
            deviate(r + 5u, end, col, rough, &d, &q);
            deviate(r + 6u, end, col, rough, &d, &q);
            deviate(r + 7u, end, col, rough, &d, &q);
        }
        let shift = d / n;
        let mean = rough + shift;
        let variance = max(q / n - shift * shift, 0.0);
        let invstd = inverseSqrt(variance + p.eps);
        for (var r = r0; r < end; r += UNROLL) {
            normalise(r, end, col, mean, invstd, gamma, beta);
            normalise(r + 1u, end, col, mean, invstd, gamma, beta);
            normalise(r + 2u, end, col, mean, invstd, gamma, beta);
            normalise(r + 3u, end, col, mean, invstd, gamma, beta);
            normalise(r + 4u, end, col, mean, invstd, gamma, beta);
            normalise(r + 5u, end, col, mean, invstd, gamma, beta);
            normalise(r + 6u, end, col, mean, invstd, gamma, beta);
            normalise(r + 7u, end, col, mean, invstd, gamma, beta);
        }
        state[saved_mean(g, col)] = mean;
        state[saved_invstd(g, col)] = invstd;
        let unbiased = variance * n / max(n - 1.0, 1.0);
        let rm = running_mean(col);
        let rv = running_var(col);
        state[rm] = (1.0 - p.momentum) * state[rm] + p.momentum * mean;
        state[rv] = (1.0 - p.momentum) * state[rv] + p.momentum * unbiased;
    }
}

@compute @workgroup_size(256)
fn batchnorm_forward_eval(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.cols {
        return;
    }
    let col = (i / p.hw) % p.cols;
    let mean = state[running_mean(col)];
    let variance = state[running_var(col)];
    let xhat = (x[i] - mean) * inverseSqrt(variance + p.eps);
    y[i] = activate(weights[p.gamma_off + col] * xhat + weights[p.beta_off + col], p.act, p.slope);
}

@compute @workgroup_size(64)
fn batchnorm_backward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) tid: u32) {
    let col = linear_workgroup(wid, nwg) * 64u + tid;
    if col >= p.cols {
        return;
    }
    let per_group = p.rows / p.groups;
    let n = f32(per_group);
    let gamma = weights[p.gamma_off + col];
    var dgamma = 0.0;
    var dbeta = 0.0;
    for (var g = 0u; g < p.groups; g++) {
        let r0 = g * per_group;
        let mean = state[saved_mean(p.first_group + g, col)];
        let invstd = state[saved_invstd(p.first_group + g, col)];
        let end = r0 + per_group;
        // Differentiates `y = act(gamma * xhat + beta)`: g is the gradient at the activation's input.
        var sum_g = 0.0;
        var sum_g_xhat = 0.0;
        for (var r = r0; r < end; r += UNROLL) {
            gradient_sums(r, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 1u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 2u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 3u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 4u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 5u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 6u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
            gradient_sums(r + 7u, end, col, mean, invstd, &sum_g, &sum_g_xhat);
        }
        let k = gamma * invstd / n;
        for (var r = r0; r < end; r += UNROLL) {
            input_gradient(r, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 1u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 2u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 3u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 4u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 5u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 6u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
            input_gradient(r + 7u, end, col, mean, invstd, k, n, sum_g, sum_g_xhat);
        }
        dgamma += sum_g_xhat;
        dbeta += sum_g;
    }
    if (p.flags & WRITE_GRADS) != 0u {
        grads[p.gamma_off + col] = dgamma;
        grads[p.beta_off + col] = dbeta;
    }
}
