// Random translation, the classifier's data augmentation: each image moved by its own whole-
// pixel offset, zeros shifted in (torchvision's RandomAffine(translate) without interpolation).
//   shift_images  out[r, c, y, x] = input[r, c, y - dy, x - dx], 0 where that falls outside,
//                 with dy = shifts[2r] - most and dx = shifts[2r + 1] - most: `shifts` holds
//                 draws in {0, …, 2·most} (fill_labels with 2·most + 1 classes)
// Bindings: 0 params (ShiftParams), 1 shifts [rows, 2] (read), 2 input [rows, channels·h·w]
//           (read), 3 out [rows, channels·h·w] (read_write)
// Grid: one thread per output value, 256 per workgroup, folded over x and y.

struct ShiftParams {
    rows: u32,
    channels: u32,
    height: u32,
    width: u32,
    most: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ShiftParams;
@group(0) @binding(1) var<storage, read> shifts: array<f32>;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn shift_images(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    let plane = p.height * p.width;
    if i >= p.rows * p.channels * plane {
        return;
    }
    let r = i / (p.channels * plane);
    let y = i32((i % plane) / p.width);
    let x = i32(i % p.width);
    // The draws are small whole numbers, exact in f32.
    let sy = y - (i32(shifts[2u * r]) - i32(p.most));
    let sx = x - (i32(shifts[2u * r + 1u]) - i32(p.most));
    var v = 0.0;
    if sy >= 0 && sy < i32(p.height) && sx >= 0 && sx < i32(p.width) {
        v = input[i - u32(y * i32(p.width) + x) + u32(sy * i32(p.width) + sx)];
    }
    out[i] = v;
}
