// Batch normalisation, as torch.nn.BatchNorm1d over the rows of a [batch, cols] batch, or
// BatchNorm2d over the batch and pixels of NCHW images ([batch, cols·hw] rows, channel c at
// columns c·hw..(c + 1)·hw), in training and evaluation modes, with the activation that follows
// it fused in. `cols` are the channels, `rows` the values per channel (batch·hw); value r of
// channel c is at at(r, c), which for hw = 1 is r·cols + c.
//   batchnorm_forward_train  y = act(gamma * (x - mean) * invstd + beta) with batch statistics
//                            (biased variance); saves mean and invstd for the backward pass and
//                            updates the running statistics with the unbiased variance.
//   batchnorm_forward_eval   the same with the running statistics.
//   batchnorm_backward       dx, dgamma, dbeta from dy, the gradient of y.
// state holds, from state_off: saved_mean [cols], saved_invstd [cols], running_mean [cols],
// running_var [cols]. gamma and beta live in the flat parameter buffer (weights); their gradients
// at the same offsets in the flat gradient buffer (grads).
// Bindings: 0 params (BatchNormParams), 1 x (read), 2 weights (read), 3 state (read_write),
//           4 y (read_write), 5 dy (read), 6 dx (read_write), 7 grads (read_write)
// Grid: train and backward: one thread per column, 64 per workgroup, folded over x and y; each
//       thread walks its column's rows (a batch: tens to hundreds), so there is no barrier. A
//       column shared by 16 lanes and tree-reduced took 12 barriers per workgroup, and was 3×
//       slower on lavapipe.
//       eval: one thread per element, 256 per workgroup, folded over x and y.

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
    hw: u32,         // 1 for BatchNorm1d; pixels per channel for BatchNorm2d
    _pad1: u32,
    _pad2: u32,
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

@compute @workgroup_size(64)
fn batchnorm_forward_train(@builtin(workgroup_id) wid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) tid: u32) {
    let col = linear_workgroup(wid, nwg) * 64u + tid;
    if col >= p.cols {
        return;
    }
    let n = f32(p.rows);
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += x[at(r, col)];
    }
    let mean = s / n;
    // A second pass for the variance: rows are few, and it avoids E[x²] - E[x]² cancellation.
    var q = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let dev = x[at(r, col)] - mean;
        q += dev * dev;
    }
    let variance = q / n;
    let invstd = inverseSqrt(variance + p.eps);
    let gamma = weights[p.gamma_off + col];
    let beta = weights[p.beta_off + col];
    for (var r = 0u; r < p.rows; r++) {
        let i = at(r, col);
        y[i] = activate(gamma * (x[i] - mean) * invstd + beta, p.act, p.slope);
    }
    let base = p.state_off;
    state[base + col] = mean;
    state[base + p.cols + col] = invstd;
    let unbiased = variance * n / max(n - 1.0, 1.0);
    let rm = base + 2u * p.cols + col;
    let rv = base + 3u * p.cols + col;
    state[rm] = (1.0 - p.momentum) * state[rm] + p.momentum * mean;
    state[rv] = (1.0 - p.momentum) * state[rv] + p.momentum * unbiased;
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
    let mean = state[p.state_off + 2u * p.cols + col];
    let variance = state[p.state_off + 3u * p.cols + col];
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
    let n = f32(p.rows);
    let mean = state[p.state_off + col];
    let invstd = state[p.state_off + p.cols + col];
    // Differentiates `y = act(gamma * xhat + beta)`: g is the gradient at the activation's input.
    var sum_g = 0.0;
    var sum_g_xhat = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let i = at(r, col);
        let g = dy[i] * activate_grad_from_output(y[i], p.act, p.slope);
        sum_g += g;
        sum_g_xhat += g * (x[i] - mean) * invstd;
    }
    let gamma = weights[p.gamma_off + col];
    let k = gamma * invstd / n;
    for (var r = 0u; r < p.rows; r++) {
        let i = at(r, col);
        let g = dy[i] * activate_grad_from_output(y[i], p.act, p.slope);
        let xhat = (x[i] - mean) * invstd;
        dx[i] = k * (n * g - sum_g - xhat * sum_g_xhat);
    }
    grads[p.gamma_off + col] = sum_g_xhat;
    grads[p.beta_off + col] = sum_g;
}
