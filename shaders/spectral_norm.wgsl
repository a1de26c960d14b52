// Spectral normalisation of a weight matrix W [rows, cols] (Miyato et al. 2018), as PyTorch's
// `torch.nn.utils.parametrizations.spectral_norm` computes it in training mode. One power
// iteration per forward pass, its products W·v and Wᵀ·u left to the matmul kernels:
//   u = normalize(W v);  v = normalize(Wᵀ u);  σ = u · (W v);  W_sn = W / σ
// with normalize(x) = x / max(‖x‖, eps). u and v live in the model's state (they are kept in
// checkpoints); σ, the products and the partial sums below live in a scratch buffer.
// The backward of W ↦ W / σ(W), u and v held constant (PyTorch computes them without grad):
//   dW = (G − ⟨G, W_sn⟩ u vᵀ) / σ       G = dL/dW_sn, overwritten by dW in place
// ⟨G, W_sn⟩ is summed in a fixed order (partial sums per workgroup, then one workgroup sums the
// partials): no atomics, so a seed repeats a run bit for bit.
// Bindings: 0 params (SpectralParams), 1 scratch (read_write: the product at its start, σ at
//           sigma_off, then ⟨G, W_sn⟩, then the partial sums), 2 state (read_write: u at u_off, v at v_off),
//           3 values (read: W), 4 normalised (read_write: W_sn, the buffer the network reads),
//           5 grads (read_write: G then dW)
// Grid: spectral_normalise, spectral_sigma and spectral_total one workgroup; spectral_scale
//       one thread per value; spectral_dot `partials` workgroups; spectral_grad one thread per
//       weight.

const TO_U: u32 = 0u;
const TO_V: u32 = 1u;

struct SpectralParams {
    rows: u32,        // W's rows: u's length
    cols: u32,        // W's columns: v's length
    w_off: u32,       // W in values, normalised and grads alike
    u_off: u32,       // u in state
    v_off: u32,       // v in state
    sigma_off: u32,   // σ in scratch; ⟨G, W_sn⟩ after it, then its partial sums
    into: u32,        // spectral_normalise: TO_U or TO_V
    eps: f32,
    n: u32,           // spectral_scale: values copied from values to normalised at w_off
    scaled: u32,      // spectral_scale: the first `scaled` of them are divided by σ (0: a copy)
    partials: u32,    // spectral_dot, spectral_grad: how many partial sums
    per_partial: u32, // spectral_dot: weights per partial sum
}

@group(0) @binding(0) var<uniform> p: SpectralParams;
@group(0) @binding(1) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> normalised: array<f32>;
@group(0) @binding(5) var<storage, read_write> grads: array<f32>;

// The product the matmul left at the scratch's start (W v: rows values; Wᵀ u: cols), divided
// by its norm, into u or v.
@compute @workgroup_size(256)
fn spectral_normalise(@builtin(local_invocation_index) tid: u32) {
    var n = p.rows;
    var dst = p.u_off;
    if p.into == TO_V {
        n = p.cols;
        dst = p.v_off;
    }
    var sq = 0.0;
    for (var i = tid; i < n; i += 256u) {
        sq += scratch[i] * scratch[i];
    }
    let denom = max(sqrt(workgroup_sum(tid, sq)), p.eps);
    for (var i = tid; i < n; i += 256u) {
        state[dst + i] = scratch[i] / denom;
    }
}

// σ = u · (W v), W v at the scratch's start.
@compute @workgroup_size(256)
fn spectral_sigma(@builtin(local_invocation_index) tid: u32) {
    var dot = 0.0;
    for (var i = tid; i < p.rows; i += 256u) {
        dot += state[p.u_off + i] * scratch[i];
    }
    let sigma = workgroup_sum(tid, dot);
    if tid == 0u {
        scratch[p.sigma_off] = sigma;
    }
}

// normalised[w_off + i] = values[w_off + i] / σ for i < scaled, a copy after (the bias, or a
// batch norm's parameters, which the network reads from the same buffer).
@compute @workgroup_size(256)
fn spectral_scale(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.n {
        return;
    }
    let x = values[p.w_off + i];
    if i < p.scaled {
        normalised[p.w_off + i] = x / scratch[p.sigma_off];
    } else {
        normalised[p.w_off + i] = x;
    }
}

// Partial sum number `wid` of ⟨G, W_sn⟩, over its `per_partial` weights.
@compute @workgroup_size(256)
fn spectral_dot(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) tid: u32) {
    let k = linear_workgroup(wid, nwg);
    let start = k * p.per_partial;
    let end = min(start + p.per_partial, p.rows * p.cols);
    var sum = 0.0;
    for (var i = start + tid; i < end; i += 256u) {
        sum += grads[p.w_off + i] * normalised[p.w_off + i];
    }
    let total = workgroup_sum(tid, sum);
    if tid == 0u && k < p.partials {
        scratch[p.sigma_off + 2u + k] = total;
    }
}

// ⟨G, W_sn⟩: the partial sums, summed.
@compute @workgroup_size(256)
fn spectral_total(@builtin(local_invocation_index) tid: u32) {
    var sum = 0.0;
    for (var k = tid; k < p.partials; k += 256u) {
        sum += scratch[p.sigma_off + 2u + k];
    }
    let total = workgroup_sum(tid, sum);
    if tid == 0u {
        scratch[p.sigma_off + 1u] = total;
    }
}

// dW = (G − ⟨G, W_sn⟩ u vᵀ) / σ in place.
@compute @workgroup_size(256)
fn spectral_grad(@builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) tid: u32) {
    let dot = scratch[p.sigma_off + 1u];
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.cols {
        return;
    }
    let r = i / p.cols;
    let c = i % p.cols;
    let g = grads[p.w_off + i];
    grads[p.w_off + i] = (g - dot * state[p.u_off + r] * state[p.v_off + c]) / scratch[p.sigma_off];
}
