// Reduces a vector to one scalar on the GPU and adds it to a metrics slot, so epoch totals
// stay on the device until the periodic readback: metrics[slot] += scale * Σ values[0..n].
// Bindings: 0 params (SumParams), 1 values (read), 2 metrics (read_write)
// Grid: exactly one 256-thread workgroup (a strided pass, then a tree reduction).

struct SumParams {
    n: u32,
    slot: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: SumParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> metrics: array<f32>;

@compute @workgroup_size(256)
fn sum_accumulate(@builtin(local_invocation_index) tid: u32) {
    var partial = 0.0;
    for (var i = tid; i < p.n; i += 256u) {
        partial += values[i];
    }
    let total = workgroup_sum(tid, partial);
    if tid == 0u {
        metrics[p.slot] += p.scale * total;
    }
}
