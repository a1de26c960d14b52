// Binary cross-entropy on logits, numerically stable, with its gradient fused in and a per-row
// sum (the VAE's reconstruction term per image); reductions to a scalar use sum_accumulate.
// Bindings: 0 params (BceParams), 1 logits (read), 2 targets (read; unused when
//           use_target_tensor == 0), 3 grad (read_write), 4 row_loss [rows] (read_write)
// Grid: one 64-thread workgroup per row, rows folded over x and y. 64 rather than 256 lanes:
//       6 barriers instead of 9 per row, each cheaper, which is what this kernel costs on
//       lavapipe; a row of 784 still gives every lane 12 values.

struct BceParams {
    rows: u32,
    cols: u32,
    use_target_tensor: u32, // 0: every target is `target_value` (soft labels such as 0.9 welcome)
    target_value: f32,
    grad_scale: f32,        // 1/(rows*cols) for a mean, 1/rows for per-row sums averaged over rows
    logit_off: u32,
    target_off: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: BceParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;

// max(x, 0) - x*t + log(1 + exp(-|x|)) never overflows.
fn bce_with_logit(x: f32, t: f32) -> f32 {
    return max(x, 0.0) - x * t + log(1.0 + exp(-abs(x)));
}

var<workgroup> row_scratch: array<f32, 64>;

@compute @workgroup_size(64)
fn bce_logits(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) tid: u32) {
    let row = linear_workgroup(wid, nwg);
    var partial = 0.0;
    if row < p.rows {
        for (var col = tid; col < p.cols; col += 64u) {
            let at = row * p.cols + col;
            let x = logits[p.logit_off + at];
            var t = p.target_value;
            if p.use_target_tensor != 0u {
                t = targets[p.target_off + at];
            }
            partial += bce_with_logit(x, t);
            // d/dx of bce_with_logit(x, t) = sigmoid(x) - t
            grad[at] = (sigmoid(x) - t) * p.grad_scale;
        }
    }
    row_scratch[tid] = partial;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if tid < s {
            row_scratch[tid] += row_scratch[tid + s];
        }
        workgroupBarrier();
    }
    if row < p.rows && tid == 0u {
        row_loss[row] = row_scratch[0];
    }
}
