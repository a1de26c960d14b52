// Convolutions as matrix products. A Conv2d over NCHW images is the matmul
//   y_cl [batch·oh·ow, out_ch] = cols [batch·oh·ow, in_ch·k·k] · Wᵀ,  W = weight [out_ch, in_ch·k·k]
// where cols holds each output pixel's receptive field (im2col), and y_cl is channels-last; so
// the fast matmul families (their blocking, their bias and activation epilogues) run every
// convolution, and these kernels only move data in and out of that layout:
//   im2col           cols[(n, oy, ox), (c, ky, kx)] = x[n, c, oy·s − p + ky, ox·s − p + kx], 0 off
//                    the image
//   col2im           x[n, c, iy, ix] = Σ cols[(n, oy, ox), (c, ky, kx)] over the (oy, ox, ky, kx)
//                    with oy·s − p + ky = iy and ox·s − p + kx = ix: im2col's transpose, done as
//                    a gather (one thread per image value, no atomics, the same sum every run).
//                    With BIAS it then adds bias[c] (aux) and with ACT applies the activation
//                    (the forward of ConvTranspose2d); with GRAD it multiplies by act'(aux) (a
//                    backward pass reaching the previous layer's output).
//   transpose_blocks dst[n, j, i] = src[n, i, j] for [a, b] blocks: NCHW ↔ channels-last; with
//                    GRAD, times act'(aux[n, j, i]).
//   channel_sum      dst[c] = Σ_{n, j} src[n, c, j] over [batch, channels, hw]: the bias gradient
//                    of a ConvTranspose2d, written into the flat gradient buffer.
// ConvTranspose2d(in → out) is this Conv2d(out → in)'s backward-input, and the other way round,
// so both layers share all four kernels (src/nn/conv.rs composes them); its weight
// [in, out, k, k] is the Conv2d's [out_ch, in_ch, k, k] as stored.
// Geometry is the Conv2d's: in_ch × in_h × in_w images to out_ch × out_h × out_w, kernel k,
// stride s, padding p.
// Bindings: 0 params (ConvParams), 1 src (read), 2 dst (read_write), 3 aux (read: bias or the
//           previous layer's output; col2im and transpose_blocks only)
// Grid: one thread per output value, 256 per workgroup, folded over x and y; channel_sum: one
//       workgroup of 256 per channel, tree-reduced.

struct ConvParams {
    batch: u32,
    in_ch: u32,
    in_h: u32,
    in_w: u32,
    out_ch: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
    src_off: u32,
    dst_off: u32,
    aux_off: u32,
    act: u32,
    slope: f32,
    flags: u32,      // BIAS | GRAD | ACCUMULATE | ACT
    // transpose_blocks: [a, b] blocks; channel_sum: channels, hw
    a: u32,
    b: u32,
    _pad0: u32,
    _pad1: u32,
}

const BIAS: u32 = 1u;
const GRAD: u32 = 2u;
const ACCUMULATE: u32 = 4u;
const ACT: u32 = 8u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;

@compute @workgroup_size(256)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    let kk = p.kernel * p.kernel;
    let fan = p.in_ch * kk;
    let pixels = p.out_h * p.out_w;
    if i >= p.batch * pixels * fan {
        return;
    }
    let row = i / fan;
    let col = i % fan;
    let n = row / pixels;
    let oy = (row % pixels) / p.out_w;
    let ox = row % p.out_w;
    let c = col / kk;
    let ky = (col % kk) / p.kernel;
    let kx = col % p.kernel;
    let iy = i32(oy * p.stride + ky) - i32(p.padding);
    let ix = i32(ox * p.stride + kx) - i32(p.padding);
    var v = 0.0;
    if iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w) {
        v = src[p.src_off + ((n * p.in_ch + c) * p.in_h + u32(iy)) * p.in_w + u32(ix)];
    }
    dst[p.dst_off + i] = v;
}

@compute @workgroup_size(256)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    let image = p.in_h * p.in_w;
    if i >= p.batch * p.in_ch * image {
        return;
    }
    let n = i / (p.in_ch * image);
    let c = (i / image) % p.in_ch;
    let iy = i32((i % image) / p.in_w);
    let ix = i32(i % p.in_w);
    let kk = p.kernel * p.kernel;
    let fan = p.in_ch * kk;
    let s = i32(p.stride);
    var acc = 0.0;
    for (var ky = 0u; ky < p.kernel; ky++) {
        let ty = iy + i32(p.padding) - i32(ky);
        if ty < 0 || ty % s != 0 || ty / s >= i32(p.out_h) {
            continue;
        }
        for (var kx = 0u; kx < p.kernel; kx++) {
            let tx = ix + i32(p.padding) - i32(kx);
            if tx < 0 || tx % s != 0 || tx / s >= i32(p.out_w) {
                continue;
            }
            let row = (n * p.out_h + u32(ty / s)) * p.out_w + u32(tx / s);
            acc += src[p.src_off + row * fan + c * kk + ky * p.kernel + kx];
        }
    }
    if (p.flags & BIAS) != 0u {
        acc += aux[p.aux_off + c];
    }
    if (p.flags & ACT) != 0u {
        acc = activate(acc, p.act, p.slope);
    }
    if (p.flags & GRAD) != 0u {
        acc *= activate_grad_from_output(aux[p.aux_off + i], p.act, p.slope);
    }
    dst[p.dst_off + i] = acc;
}

@compute @workgroup_size(256)
fn transpose_blocks(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    let block = p.a * p.b;
    if i >= p.batch * block {
        return;
    }
    // i walks dst, [b, a] per block, so the writes are contiguous.
    let n = i / block;
    let j = (i % block) / p.a;
    let k = i % p.a;
    var v = src[p.src_off + n * block + k * p.b + j];
    if (p.flags & GRAD) != 0u {
        v *= activate_grad_from_output(aux[p.aux_off + i], p.act, p.slope);
    }
    dst[p.dst_off + i] = v;
}

@compute @workgroup_size(256)
fn channel_sum(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) tid: u32) {
    let c = linear_workgroup(wid, nwg);
    // Uniform per workgroup: every thread of a workgroup reaches workgroup_sum's barriers.
    let live = c < p.a;
    var acc = 0.0;
    if live {
        let per_image = p.a * p.b;
        for (var e = tid; e < p.batch * p.b; e += 256u) {
            acc += src[p.src_off + (e / p.b) * per_image + c * p.b + e % p.b];
        }
    }
    let total = workgroup_sum(tid, acc);
    if live && tid == 0u {
        var v = total;
        if (p.flags & ACCUMULATE) != 0u {
            v += dst[p.dst_off + c];
        }
        dst[p.dst_off + c] = v;
    }
}
