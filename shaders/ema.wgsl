// An exponential moving average of n values of a flat buffer from `offset` (the generator's
// parameters, or its batch-norm statistics), in place, after each step's update:
//   decay_t = min(decay, t / (9 + t));  average = lerp(average, value, 1 - decay_t)
// as torch's `average.lerp_(value, 1 - decay_t)`. The warm-up (TensorFlow's
// ExponentialMovingAverage with num_updates = t - 1) forgets the initial weights within the
// first hundreds of steps instead of the first thousands.
// One thread per vec4, as Adam: the buffers are whole vec4s and the ranges start on 64-element
// boundaries, so the up to 3 elements past n are padding (zero in both) and stay zero.
// Bindings: 0 params (EmaParams), 1 step (Step), 2 average (read_write), 3 value (read),
//           both vec4 arrays
// Grid: one thread per 4 values, 256 per workgroup, folded over x and y.

struct EmaParams {
    n: u32,
    offset: u32, // first value, a multiple of 4
    decay: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: EmaParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> average: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> value: array<vec4<f32>>;

@compute @workgroup_size(256)
fn ema(@builtin(workgroup_id) wid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) tid: u32) {
    let i = block_vec4(wid, nwg, tid, p.n, p.offset);
    if i == NO_VEC4 {
        return;
    }
    let t = f32(step.t);
    let decay = min(p.decay, t / (9.0 + t));
    let a = average[i];
    average[i] = a + (1.0 - decay) * (value[i] - a);
}
