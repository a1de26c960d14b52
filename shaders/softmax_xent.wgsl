// Softmax cross-entropy for the classifier, numerically stable (max subtracted), with the
// gradient fused in, and softmax probabilities for evaluation.
//   softmax_cross_entropy  grad = (softmax(x) - onehot(label)) * grad_scale;
//                          row_loss = -log softmax(x)[label]; correct = 1 if argmax(x) == label
//   softmax_rows           probs = softmax(x)
// Bindings: 0 params (XentParams), 1 logits [rows, classes] (read), 2 labels [rows] (read, class
//           indices as f32), 3 grad or probs [rows, classes] (read_write), 4 row_loss [rows]
//           (read_write), 5 correct [rows] (read_write)
// Grid: one 64-thread workgroup per row, rows folded over x and y.

struct XentParams {
    rows: u32,
    classes: u32,
    grad_scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<f32>;

var<workgroup> scratch: array<f32, 64>;
var<workgroup> scratch_index: array<u32, 64>;

// Max over the row with the lowest index among ties (argmax as torch takes it).
fn row_argmax(tid: u32, base: u32) -> vec2<f32> {
    var best = -3.4e38;
    var at = 0xffffffffu;
    for (var c = tid; c < p.classes; c += 64u) {
        let v = logits[base + c];
        if v > best {
            best = v;
            at = c;
        }
    }
    scratch[tid] = best;
    scratch_index[tid] = at;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if tid < s {
            let o = tid + s;
            if scratch[o] > scratch[tid] || (scratch[o] == scratch[tid] && scratch_index[o] < scratch_index[tid]) {
                scratch[tid] = scratch[o];
                scratch_index[tid] = scratch_index[o];
            }
        }
        workgroupBarrier();
    }
    let result = vec2<f32>(scratch[0], f32(scratch_index[0]));
    workgroupBarrier();
    return result;
}

fn row_sum(tid: u32, v: f32) -> f32 {
    scratch[tid] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if tid < s {
            scratch[tid] += scratch[tid + s];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}

// (max, argmax, sum of exp(x - max)) of a row; every thread gets them.
fn row_stats(tid: u32, base: u32) -> vec3<f32> {
    let m = row_argmax(tid, base);
    var partial = 0.0;
    for (var c = tid; c < p.classes; c += 64u) {
        partial += exp(logits[base + c] - m.x);
    }
    return vec3<f32>(m.x, m.y, row_sum(tid, partial));
}

@compute @workgroup_size(64)
fn softmax_cross_entropy(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) tid: u32) {
    let row = min(linear_workgroup(wid, nwg), p.rows - 1u);
    let live = linear_workgroup(wid, nwg) < p.rows;
    let base = row * p.classes;
    let stats = row_stats(tid, base);
    if !live {
        return;
    }
    let label = u32(labels[row]);
    for (var c = tid; c < p.classes; c += 64u) {
        let prob = exp(logits[base + c] - stats.x) / stats.z;
        // d/dx_c of -log softmax(x)[label] = softmax(x)_c - [c == label]
        out[base + c] = (prob - select(0.0, 1.0, c == label)) * p.grad_scale;
    }
    if tid == 0u {
        row_loss[row] = log(stats.z) + stats.x - logits[base + label];
        correct[row] = select(0.0, 1.0, u32(stats.y) == label);
    }
}

@compute @workgroup_size(64)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) tid: u32) {
    let row = min(linear_workgroup(wid, nwg), p.rows - 1u);
    let live = linear_workgroup(wid, nwg) < p.rows;
    let base = row * p.classes;
    let stats = row_stats(tid, base);
    if !live {
        return;
    }
    for (var c = tid; c < p.classes; c += 64u) {
        out[base + c] = exp(logits[base + c] - stats.x) / stats.z;
    }
}
