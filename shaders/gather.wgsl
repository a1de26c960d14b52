// Gathers a batch of images from the dataset, which lives on the GPU as bytes (4 pixels per
// u32), by the epoch's shuffled index list, and scales them: out = byte * scale + shift
// ([0, 1] with scale 1/255; [-1, 1] with 2/255 and -1).
//   gather_rows    out [rows, cols] = data[order[batch_start + r]] * scale + shift
//   gather_labels  out [rows] = the label byte of order[batch_start + r], as f32 (cols = 1)
// Bindings: 0 params (GatherParams), 1 step (Step: batch_start), 2 data (read, packed bytes),
//           3 order (read: the permutation), 4 out [rows, cols] (read_write)
// Grid: one thread per output value, 256 per workgroup, folded over x and y.

struct GatherParams {
    rows: u32,
    cols: u32,
    scale: f32,
    shift: f32,
}

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> data: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.cols {
        return;
    }
    let row = i / p.cols;
    let col = i % p.cols;
    let item = order[step.batch_start + row];
    let byte_at = item * p.cols + col;
    let byte = (data[byte_at / 4u] >> (8u * (byte_at % 4u))) & 0xffu;
    out[i] = f32(byte) * p.scale + p.shift;
}

@compute @workgroup_size(256)
fn gather_labels(@builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) tid: u32) {
    let row = linear_workgroup(wid, nwg) * 256u + tid;
    if row >= p.rows {
        return;
    }
    let item = order[step.batch_start + row];
    out[row] = f32((data[item / 4u] >> (8u * (item % 4u))) & 0xffu);
}
