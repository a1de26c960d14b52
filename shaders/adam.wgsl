// Adam with bias correction (and AdamW's decoupled weight decay when weight_decay > 0) over
// n parameters of the flat buffer from `offset` (the whole buffer, or one network's block) in
// one dispatch, as torch.optim.Adam/AdamW compute it, lr being p.lr times the step's schedule
// factor (as a torch LR scheduler sets it):
//   p -= lr * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
//   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// bc1 and bc2 (1 - beta^t) come from the step buffer so many steps share one command buffer.
// Each thread updates a vec4 of parameters: 7 memory accesses per 4 parameters instead of per
// parameter, which is what Adam's time is on lavapipe (every access is a loop over the lanes)
// and its bandwidth on a GPU. The buffers are whole vec4s (wgen pads every tensor) and blocks
// start on 64-element boundaries; the up to 3 elements past n are padding, always zero, and
// stay zero.
// Bindings: 0 params (AdamParams), 1 step (Step), 2 param (read_write), 3 grad (read),
//           4 m (read_write), 5 v (read_write), all vec4 arrays
// Grid: one thread per 4 parameters, 256 per workgroup, folded over x and y.

struct AdamParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    offset: u32, // first parameter, a multiple of 4
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: AdamParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let i = block_vec4(wid, nwg, tid, p.n, p.offset);
    if i == NO_VEC4 {
        return;
    }
    let lr = p.lr * step.lr_scale;
    let g = grad[i];
    var w = param[i];
    w -= lr * p.weight_decay * w;
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let denom = sqrt(vi) / sqrt(step.adam_bc2) + p.eps;
    param[i] = w - (lr / step.adam_bc1) * mi / denom;
}
