// Shared prelude: the host prepends this file to every kernel module (src/gpu/pipelines.rs), so
// activations and grid arithmetic are written once. It declares no bindings and no entry points.

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_LEAKY_RELU: u32 = 2u;
const ACT_SIGMOID: u32 = 3u;
const ACT_TANH: u32 = 4u;

// The parameters of every matmul kernel (matmul.wgsl, matmul_vec4.wgsl, matmul_subgroup.wgsl);
// twin of nn::linear::MatmulParams. C[m, n] = sum_k A(m, k) * B(k, n), A and B read through
// strides so one layout description serves the forward and both backward products.
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    act: u32,
    a_row: u32,     // A(m, k) = a[a_off + m * a_row + k * a_col]
    a_col: u32,
    b_row: u32,     // B(k, n) = b[b_off + k * b_row + n * b_col]
    b_col: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,     // C and D are row-major with row length n
    d_off: u32,
    bias_off: u32,  // forward: bias in b; backward_weight: bias gradient in c
    flags: u32,     // FLAG_BIAS | FLAG_ACCUMULATE | FLAG_A_VEC4
    slope: f32,
    k_chunk: u32,   // backward_weight_vec4 only: k per split (0: one split of all k)
}

const FLAG_BIAS: u32 = 1u;
const FLAG_ACCUMULATE: u32 = 2u;
// Subgroup kernels only: A's contiguous axis (k in the forward and backward_input, m in
// backward_weight), its row stride and its offset are multiples of 4.
const FLAG_A_VEC4: u32 = 4u;

// The per-step values every kernel of a training step may read. One buffer, refreshed by a
// buffer copy before each step's pass, so many steps can share one command buffer.
struct Step {
    t: u32,            // Adam's 1-based step count
    rng_step: u32,     // RNG counter word: which step's noise
    batch_start: u32,  // first position of this batch in the epoch's permutation
    _pad0: u32,
    adam_bc1: f32,     // 1 - beta1^t, computed on the host in f64
    adam_bc2: f32,     // 1 - beta2^t
    lr_scale: f32,     // the learning-rate schedule's factor at this step (1: none)
    _pad1: u32,
}

fn sigmoid(x: f32) -> f32 {
    // Split by sign so exp never overflows.
    if x >= 0.0 {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn activate(x: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(x * slope, x, x > 0.0); }
        case 3u: { return sigmoid(x); }
        // Some back ends return NaN from tanh for large |x|; it is ±1 to f32 precision beyond 15.
        case 4u: { return tanh(clamp(x, -15.0, 15.0)); }
        default: { return x; }
    }
}

// d act(x) / dx expressed through the output y = act(x), so backward passes need only the
// stored activation. Valid for LeakyReLU because its slope is positive.
fn activate_grad_from_output(y: f32, act: u32, slope: f32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return select(slope, 1.0, y > 0.0); }
        case 3u: { return y * (1.0 - y); }
        case 4u: { return 1.0 - y * y; }
        default: { return 1.0; }
    }
}

// Workgroup index of a 1-D job laid over a 2-D/3-D grid: the host folds counts above the
// adapter's per-axis limit (65,535 on most) into y and z.
fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y;
}

// The vec4 a thread updates in a block of n values from `offset` (a multiple of 4) of a flat
// buffer, one thread per vec4 and 256 per workgroup (Adam, the moving average); NO_VEC4 past
// the block's end.
const NO_VEC4: u32 = 0xffffffffu;

fn block_vec4(wid: vec3<u32>, nwg: vec3<u32>, tid: u32, n: u32, offset: u32) -> u32 {
    let k = linear_workgroup(wid, nwg) * 256u + tid;
    if k >= (n + 3u) / 4u {
        return NO_VEC4;
    }
    return offset / 4u + k;
}

// Tree reduction over a 256-thread workgroup. Every thread must call it (it holds barriers);
// each gets the total.
var<workgroup> reduce_scratch: array<f32, 256>;

fn workgroup_sum(tid: u32, v: f32) -> f32 {
    reduce_scratch[tid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if tid < s {
            reduce_scratch[tid] += reduce_scratch[tid + s];
        }
        workgroupBarrier();
    }
    let total = reduce_scratch[0];
    // The next call overwrites the scratch; nobody may still be reading it.
    workgroupBarrier();
    return total;
}
