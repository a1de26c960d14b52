// Differentiable augmentation (DiffAugment, Zhao et al. 2020): every image the GAN's D sees,
// real or generated, goes through its own random transform, and G's gradient comes back
// through it. The policy's parts run in DiffAugment's order, each on when its bit is set:
//   color        v = s·(x − m_p) + m_p + b, then k·(v − M) + M: brightness b = u0 − ½,
//                saturation s = 2·u1 about m_p (the pixel's mean over channels), contrast
//                k = u2 + ½ about M (the image's mean after brightness, mean(x) + b)
//   translation  out[c, h, w] = v[c, h + ty, w + tx], 0 where that falls outside; ty, tx
//                whole numbers in [−t, t] from u3, u4, with t = ⌊S/8 + ½⌋
//   cutout       out = 0 in a square of side q = ⌊S/2 + ½⌋ whose first row and column,
//                o − ⌊q/2⌋, come from o in [0, S + 1 − q mod 2) drawn from u5, u6; clipped
//                to the image
// where u0..u7 are the row's eight uniform draws in (0, 1) (u7 unused) and a draw u gives the
// whole number ⌊u·n⌋ of [0, n).
//   diff_augment           out[r] = T_r(input[r]) on the image's C·S·S values; the columns
//                          after them (a conditioned D's label vectors) are copied as they are
//   diff_augment_backward  out[r] = T_rᵀ(input[r]) (the gradient at the augmented image back
//                          at the image), times act′ from `prev` (the activation's output
//                          that made the image) when act is not identity
// Bindings: 0 params (AugmentParams), 1 draws [rows, 8] (read), 2 input [rows, in_stride]
//           (read), 3 prev [rows, C·S·S] (read; the backward only: the activation's output,
//           or dy again for none), 4 out [rows, out_stride] (read_write)
// Grid: one 256-thread workgroup per row (image), folded over x and y; it tree-reduces the
// image's sum (the contrast's mean and its gradient) in a fixed order.

const AUG_COLOR: u32 = 1u;
const AUG_TRANSLATION: u32 = 2u;
const AUG_CUTOUT: u32 = 4u;

struct AugmentParams {
    rows: u32,
    channels: u32,
    side: u32,
    policy: u32,     // AUG_COLOR | AUG_TRANSLATION | AUG_CUTOUT
    in_stride: u32,  // values per input row (≥ C·S·S)
    out_stride: u32, // values per output row (≥ C·S·S; the forward copies the rest)
    prev_off: u32,   // backward: where `prev`'s first row starts
    act: u32,        // backward: the activation whose output `prev` holds
    slope: f32,
    draws_off: u32,  // where `draws`' first row starts
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: AugmentParams;
@group(0) @binding(1) var<storage, read> draws: array<f32>;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> prev: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// A row's transform, decoded from its draws.
struct Transform {
    bright: f32,
    sat: f32,
    contrast: f32,
    ty: i32,
    tx: i32,
    cut_y: i32,  // the cutout square's first row and column (may be negative)
    cut_x: i32,
}

fn whole(u: f32, n: u32) -> i32 {
    return i32(min(u32(u * f32(n)), n - 1u));
}

fn transform_of(r: u32) -> Transform {
    let u = p.draws_off + r * 8u;
    var t = Transform(0.0, 1.0, 1.0, 0, 0, 0, 0);
    if (p.policy & AUG_COLOR) != 0u {
        t.bright = draws[u] - 0.5;
        t.sat = 2.0 * draws[u + 1u];
        t.contrast = draws[u + 2u] + 0.5;
    }
    if (p.policy & AUG_TRANSLATION) != 0u {
        let most = (p.side + 4u) / 8u;
        t.ty = whole(draws[u + 3u], 2u * most + 1u) - i32(most);
        t.tx = whole(draws[u + 4u], 2u * most + 1u) - i32(most);
    }
    if (p.policy & AUG_CUTOUT) != 0u {
        let q = (p.side + 1u) / 2u;
        let span = p.side + 1u - q % 2u;
        t.cut_y = whole(draws[u + 5u], span) - i32(q / 2u);
        t.cut_x = whole(draws[u + 6u], span) - i32(q / 2u);
    }
    return t;
}

// Whether output pixel (h, w) exists and keeps a value: its source inside the image and it
// outside the cutout square.
fn kept(t: Transform, h: i32, w: i32) -> bool {
    let s = i32(p.side);
    if h < 0 || h >= s || w < 0 || w >= s {
        return false;
    }
    let sh = h + t.ty;
    let sw = w + t.tx;
    if sh < 0 || sh >= s || sw < 0 || sw >= s {
        return false;
    }
    if (p.policy & AUG_CUTOUT) != 0u {
        let q = i32((p.side + 1u) / 2u);
        if h >= t.cut_y && h < t.cut_y + q && w >= t.cut_x && w < t.cut_x + q {
            return false;
        }
    }
    return true;
}

@compute @workgroup_size(256)
fn diff_augment(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) tid: u32) {
    // Whole workgroups leave together, so the reductions' barriers stay uniform.
    let r = linear_workgroup(wid, nwg);
    if r >= p.rows {
        return;
    }
    let plane = p.side * p.side;
    let n = p.channels * plane;
    let t = transform_of(r);
    let x = r * p.in_stride;
    var part = 0.0;
    for (var i = tid; i < n; i += 256u) {
        part += input[x + i];
    }
    let mean = workgroup_sum(tid, part) / f32(n) + t.bright;
    let o = r * p.out_stride;
    for (var i = tid; i < n; i += 256u) {
        let c = i / plane;
        let h = i32((i % plane) / p.side);
        let w = i32(i % p.side);
        var v = 0.0;
        if kept(t, h, w) {
            let q = u32((h + t.ty) * i32(p.side) + w + t.tx);
            var pixel = 0.0;
            for (var ch = 0u; ch < p.channels; ch++) {
                pixel += input[x + ch * plane + q];
            }
            pixel /= f32(p.channels);
            let value = t.sat * (input[x + c * plane + q] - pixel) + pixel + t.bright;
            v = t.contrast * (value - mean) + mean;
        }
        out[o + i] = v;
    }
    for (var i = n + tid; i < p.out_stride; i += 256u) {
        out[o + i] = input[x + i];
    }
}

@compute @workgroup_size(256)
fn diff_augment_backward(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) tid: u32) {
    let r = linear_workgroup(wid, nwg);
    if r >= p.rows {
        return;
    }
    let plane = p.side * p.side;
    let n = p.channels * plane;
    let t = transform_of(r);
    let dy = r * p.in_stride;
    // The gradient's sum over the kept outputs feeds the contrast's mean.
    var part = 0.0;
    for (var i = tid; i < n; i += 256u) {
        if kept(t, i32((i % plane) / p.side), i32(i % p.side)) {
            part += input[dy + i];
        }
    }
    let from_mean = (1.0 - t.contrast) * workgroup_sum(tid, part) / f32(n);
    let o = r * p.out_stride;
    for (var i = tid; i < n; i += 256u) {
        let c = i / plane;
        // Output pixel (h, w) read source pixel (h + ty, w + tx): this source's output.
        let h = i32((i % plane) / p.side) - t.ty;
        let w = i32(i % p.side) - t.tx;
        var g = from_mean;
        if kept(t, h, w) {
            let q = u32(h * i32(p.side) + w);
            var pixel = 0.0;
            for (var ch = 0u; ch < p.channels; ch++) {
                pixel += input[dy + ch * plane + q];
            }
            g += t.contrast * (t.sat * input[dy + c * plane + q] + (1.0 - t.sat) * pixel / f32(p.channels));
        }
        out[o + i] = g * activate_grad_from_output(prev[p.prev_off + r * n + i], p.act, p.slope);
    }
}
