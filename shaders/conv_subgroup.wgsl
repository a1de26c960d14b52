// Convolutions as implicit matrix products for adapters with 8-lane subgroups (lavapipe): the
// blocking of matmul_subgroup.wgsl (one subgroup owns 16 rows × 32 columns of the product, each
// lane 16 × 4 in registers, lane l loading rows l and l + 8 of the shared operand and the others
// reading them by subgroupBroadcast), with that operand gathered straight from the NCHW images,
// zero outside them, instead of from an im2col copy; results are written NCHW. Index arithmetic
// stays out of the inner loops: a row is decoded once per lane, the taps and pixels along k are
// walked with counters (an integer division is a scalar loop over the lanes on lavapipe).
// Geometry is the Conv2d's: in_ch × in_h × in_w to out_ch × out_h × out_w, kernel k, stride s,
// padding p; ConvTranspose2d runs the same kernels the other way round (src/nn/conv_implicit.rs).
//   conv_forward_subgroup         y[n, o, oy, ox] = act(Σ_(c,ky,kx) W[o, c, ky, kx]
//                                   · x[n, c, oy·s − p + ky, ox·s − p + kx] + b[o]) (⊙ act'(aux))
//                                 rows: output pixels (n, oy, ox); columns: o; k: (c, ky, kx);
//                                 W read as vec4s along k where its rows and offset allow; with
//                                 a 4-wide kernel (ROW4) a k-step is one kernel row, four
//                                 neighbours in one image row, read as two aligned vec4s
//   conv_backward_input_subgroup  dx[n, c, iy, ix] = Σ dy[n, o, oy, ox] · W[o, c, ky, kx] over
//                                   oy·s − p + ky = iy (and x alike), then + b, act, ⊙ act'(aux)
//                                 done per stride class (iy mod s, ix mod s): within one, only
//                                 the taps ky = (iy + p) mod s + s·ty are live, so k is
//                                 (o, ty, tx), T = ceil(k / s) taps a side, and no product is
//                                 wasted on strides; B comes from conv_taps' rearranged weights
//   conv_backward_weight_subgroup dW[o, (c, ky, kx)] = Σ_(n,oy,ox) dy[n, o, oy, ox]
//                                   · x[n, c, oy·s − p + ky, ox·s − p + kx]
//                                 rows: (c, ky, kx), gathered; columns: o, from dy as it is
//                                 (DY_NCHW: four pixels a vec4, where an image is whole vec4s)
//                                 or channels-last (`cl`, vec4s where out_ch allows); k: pixels, split into `splits` chunks of `chunk`
//                                 (split-K), each writing its partial dWᵀ when splits > 1
//   conv_taps                     taps[class, (o, ty, tx), c] = W[o, c, ky, kx] (0 where the tap
//                                 falls off the kernel or c ≥ in_ch), padded to vec4 rows, then
//                                 the bias
//   conv_reduce_splits            dW[o, e] = Σ_split partial[split, e, o], in split order: no
//                                 atomics, the same sum every run
// Bindings: 0 params (ConvGemmParams), 1 src (read: the gathered images, or the partials),
//           6 src4 (read: src again, as vec4s),
//           2 w (read, vec4: weights or taps, and the bias), 3 dst (read_write, vec4),
//           4 aux (read: the previous layer's output for act'), 5 cl (read, vec4: dy,
//           channels-last or NCHW); each kernel binds the slots it uses
// Grid: the products: workgroup (8) = one subgroup; x = column blocks of 32, y (folded into z)
//       = row blocks of 16 × stride classes (backward_input) or × splits (backward_weight);
//       conv_taps and conv_reduce_splits: one thread per value, 256 per workgroup.

struct ConvGemmParams {
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
    w_off: u32,
    dst_off: u32,
    aux_off: u32,
    bias_off: u32,
    act: u32,
    slope: f32,
    flags: u32,       // BIAS | GRAD | ACT | W_VEC4 | CL_VEC4 | ROW4 | DY_NCHW
    taps: u32,        // T: live taps a side per stride class
    row_blocks: u32,  // blocks of 16 rows per class or split
    chunk: u32,       // pixels per split (a multiple of 4)
    splits: u32,
    cl_off: u32,
    _pad: u32,
}

const BIAS: u32 = 1u;
const GRAD: u32 = 2u;
const ACT: u32 = 4u;
const W_VEC4: u32 = 8u;
const CL_VEC4: u32 = 16u;
const ROW4: u32 = 32u;
const DY_NCHW: u32 = 64u;

@group(0) @binding(0) var<uniform> p: ConvGemmParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(6) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read> cl: array<vec4<f32>>;

/// src[base + (ch·h + y)·w + x], 0 outside the image or past the last channel; the index is
/// clamped so the load is always in bounds and no lane branches.
fn gather(base: u32, ch: u32, y: i32, x: i32, channels: u32, h: u32, wd: u32) -> f32 {
    let inside = ch < channels && y >= 0 && y < i32(h) && x >= 0 && x < i32(wd);
    let e = base + (min(ch, channels - 1u) * h + u32(clamp(y, 0, i32(h) - 1))) * wd + u32(clamp(x, 0, i32(wd) - 1));
    return select(0.0, src[e], inside);
}

/// x[base + (ch·in_h + y)·in_w + x .. + 3], zero outside the image: the two aligned vec4s
/// that hold them, shifted into place (loads count on lavapipe, shuffles hardly).
fn image_row4(base: u32, ch: u32, y: i32, x: i32) -> vec4<f32> {
    let row_ok = y >= 0 && y < i32(p.in_h);
    let start = i32(base + (ch * p.in_h + u32(clamp(y, 0, i32(p.in_h) - 1))) * p.in_w) + x;
    // start > −4 (padding < 4, the host's condition for ROW4), so start + 4 is positive.
    let q = (start + 4) / 4 - 1;
    let last = i32(arrayLength(&src4)) - 1;
    let v0 = src4[clamp(q, 0, last)];
    let v1 = src4[clamp(q + 1, 0, last)];
    // Selects, not a switch: the shift differs from lane to lane, and lavapipe would run
    // every case of a divergent switch one after another.
    let r = (start + 4) % 4;
    let v = select(select(select(v0, vec4<f32>(v0.yzw, v1.x), r == 1), vec4<f32>(v0.zw, v1.xy), r == 2), vec4<f32>(v0.w, v1.xyz), r == 3);
    let xs = vec4<i32>(x) + vec4<i32>(0, 1, 2, 3);
    let inside = vec4<bool>(row_ok) & (xs >= vec4<i32>(0)) & (xs < vec4<i32>(i32(p.in_w)));
    return select(vec4<f32>(0.0), v, inside);
}

/// One value of dst.
fn put(e: u32, v: f32) {
    dst[e / 4u][e % 4u] = v;
}

/// A pixel (n, y, x) of an image of h × w, stepped in row-major order. Also a position along
/// k, walked without division: (channel, tap row, tap column) of a side × side kernel.
struct Pixel {
    n: u32,
    y: u32,
    x: u32,
}

fn pixel_at(i: u32, h: u32, wd: u32) -> Pixel {
    let plane = h * wd;
    return Pixel(i / plane, (i % plane) / wd, i % wd);
}

fn next_pixel(q: Pixel, h: u32, wd: u32) -> Pixel {
    var n = Pixel(q.n, q.y, q.x + 1u);
    if n.x == wd {
        n.x = 0u;
        n.y += 1u;
        if n.y == h {
            n.y = 0u;
            n.n += 1u;
        }
    }
    return n;
}

/// Adds this k-step's 16 × 4 products, rows from lo (rows 0..7) and hi (8..15) by broadcast.
fn step_dots(acc: ptr<function, Block>, lo: vec4<f32>, hi: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) {
    (*acc).r0 += dots(subgroupBroadcast(lo, 0u), b0, b1, b2, b3);
    (*acc).r1 += dots(subgroupBroadcast(lo, 1u), b0, b1, b2, b3);
    (*acc).r2 += dots(subgroupBroadcast(lo, 2u), b0, b1, b2, b3);
    (*acc).r3 += dots(subgroupBroadcast(lo, 3u), b0, b1, b2, b3);
    (*acc).r4 += dots(subgroupBroadcast(lo, 4u), b0, b1, b2, b3);
    (*acc).r5 += dots(subgroupBroadcast(lo, 5u), b0, b1, b2, b3);
    (*acc).r6 += dots(subgroupBroadcast(lo, 6u), b0, b1, b2, b3);
    (*acc).r7 += dots(subgroupBroadcast(lo, 7u), b0, b1, b2, b3);
    (*acc).r8 += dots(subgroupBroadcast(hi, 0u), b0, b1, b2, b3);
    (*acc).r9 += dots(subgroupBroadcast(hi, 1u), b0, b1, b2, b3);
    (*acc).r10 += dots(subgroupBroadcast(hi, 2u), b0, b1, b2, b3);
    (*acc).r11 += dots(subgroupBroadcast(hi, 3u), b0, b1, b2, b3);
    (*acc).r12 += dots(subgroupBroadcast(hi, 4u), b0, b1, b2, b3);
    (*acc).r13 += dots(subgroupBroadcast(hi, 5u), b0, b1, b2, b3);
    (*acc).r14 += dots(subgroupBroadcast(hi, 6u), b0, b1, b2, b3);
    (*acc).r15 += dots(subgroupBroadcast(hi, 7u), b0, b1, b2, b3);
}

/// As step_dots, for B held as rows along the columns (b_t = B(k + t, j..j+3)).
fn step_combine(acc: ptr<function, Block>, lo: vec4<f32>, hi: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) {
    (*acc).r0 += combine(subgroupBroadcast(lo, 0u), b0, b1, b2, b3);
    (*acc).r1 += combine(subgroupBroadcast(lo, 1u), b0, b1, b2, b3);
    (*acc).r2 += combine(subgroupBroadcast(lo, 2u), b0, b1, b2, b3);
    (*acc).r3 += combine(subgroupBroadcast(lo, 3u), b0, b1, b2, b3);
    (*acc).r4 += combine(subgroupBroadcast(lo, 4u), b0, b1, b2, b3);
    (*acc).r5 += combine(subgroupBroadcast(lo, 5u), b0, b1, b2, b3);
    (*acc).r6 += combine(subgroupBroadcast(lo, 6u), b0, b1, b2, b3);
    (*acc).r7 += combine(subgroupBroadcast(lo, 7u), b0, b1, b2, b3);
    (*acc).r8 += combine(subgroupBroadcast(hi, 0u), b0, b1, b2, b3);
    (*acc).r9 += combine(subgroupBroadcast(hi, 1u), b0, b1, b2, b3);
    (*acc).r10 += combine(subgroupBroadcast(hi, 2u), b0, b1, b2, b3);
    (*acc).r11 += combine(subgroupBroadcast(hi, 3u), b0, b1, b2, b3);
    (*acc).r12 += combine(subgroupBroadcast(hi, 4u), b0, b1, b2, b3);
    (*acc).r13 += combine(subgroupBroadcast(hi, 5u), b0, b1, b2, b3);
    (*acc).r14 += combine(subgroupBroadcast(hi, 6u), b0, b1, b2, b3);
    (*acc).r15 += combine(subgroupBroadcast(hi, 7u), b0, b1, b2, b3);
}

/// This lane's bias for channels col0..col0+3 (clamped), zero without BIAS.
fn lane_bias(col0: u32, channels: u32) -> vec4<f32> {
    var b = vec4<f32>(0.0);
    if (p.flags & BIAS) != 0u {
        let e = p.bias_off + min(col0, channels - 1u);
        let e1 = p.bias_off + min(col0 + 1u, channels - 1u);
        let e2 = p.bias_off + min(col0 + 2u, channels - 1u);
        let e3 = p.bias_off + min(col0 + 3u, channels - 1u);
        b = vec4<f32>(w[e / 4u][e % 4u], w[e1 / 4u][e1 % 4u], w[e2 / 4u][e2 % 4u], w[e3 / 4u][e3 % 4u]);
    }
    return b;
}

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activate(v.x, p.act, p.slope), activate(v.y, p.act, p.slope), activate(v.z, p.act, p.slope), activate(v.w, p.act, p.slope));
}

/// The epilogue on four output values at elements e, e + step, e + 2·step, e + 3·step:
/// + bias, the activation (ACT), ⊙ act'(aux) there (GRAD).
fn finish4(v: vec4<f32>, bias: vec4<f32>, e: u32, step: u32) -> vec4<f32> {
    var y = v + bias;
    if (p.flags & ACT) != 0u {
        y = act4(y);
    }
    if (p.flags & GRAD) != 0u {
        let a = p.aux_off + e;
        let g = vec4<f32>(aux[a], aux[a + step], aux[a + 2u * step], aux[a + 3u * step]);
        y *= vec4<f32>(activate_grad_from_output(g.x, p.act, p.slope), activate_grad_from_output(g.y, p.act, p.slope),
                       activate_grad_from_output(g.z, p.act, p.slope), activate_grad_from_output(g.w, p.act, p.slope));
    }
    return y;
}

/// Stores y's four channels that exist, col0.. of `channels`, at dst[at], dst[at + step], …
fn put_channels(y: vec4<f32>, at: u32, step: u32, col0: u32, channels: u32) {
    if col0 < channels {
        put(at, y.x);
    }
    if col0 + 1u < channels {
        put(at + step, y.y);
    }
    if col0 + 2u < channels {
        put(at + 2u * step, y.z);
    }
    if col0 + 3u < channels {
        put(at + 3u * step, y.w);
    }
}

/// W(row, 4·k4..4·k4+3) of the forward, row `row` starting at element `start`; 0 past `len`.
fn w_vec4(start: u32, k4: u32, len: u32) -> vec4<f32> {
    if (p.flags & W_VEC4) != 0u {
        return w[start / 4u + k4];
    }
    var v = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t++) {
        let e = start + min(4u * k4 + t, len - 1u);
        v[t] = select(0.0, w[e / 4u][e % 4u], 4u * k4 + t < len);
    }
    return v;
}

/// One output pixel's row of a finished block: channels col0..col0+3 at (at.n, pixel at.x).
fn store_pixel_row(v: vec4<f32>, row: u32, at: Pixel, col0: u32, m: u32, pixels: u32, channels: u32, bias: vec4<f32>) {
    if row < m {
        let e = (at.n * channels + col0) * pixels + at.x;
        put_channels(finish4(v, bias, e, pixels), p.dst_off + e, pixels, col0, channels);
    }
}

/// Four output pixels' rows from `row` (a multiple of 4, in one image since pixels is too):
/// each channel's four values are one vec4 of the NCHW output.
fn store_pixel_rows4(r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>, row: u32, at: Pixel, col0: u32, m: u32, pixels: u32, channels: u32, bias: vec4<f32>) {
    if row < m {
        let e = (at.n * channels + col0) * pixels + at.x;
        if col0 < channels {
            dst[(p.dst_off + e) / 4u] = finish4(vec4<f32>(r0.x, r1.x, r2.x, r3.x), vec4<f32>(bias.x), e, 1u);
        }
        if col0 + 1u < channels {
            dst[(p.dst_off + e + pixels) / 4u] = finish4(vec4<f32>(r0.y, r1.y, r2.y, r3.y), vec4<f32>(bias.y), e + pixels, 1u);
        }
        if col0 + 2u < channels {
            dst[(p.dst_off + e + 2u * pixels) / 4u] = finish4(vec4<f32>(r0.z, r1.z, r2.z, r3.z), vec4<f32>(bias.z), e + 2u * pixels, 1u);
        }
        if col0 + 3u < channels {
            dst[(p.dst_off + e + 3u * pixels) / 4u] = finish4(vec4<f32>(r0.w, r1.w, r2.w, r3.w), vec4<f32>(bias.w), e + 3u * pixels, 1u);
        }
    }
}

/// Moves a pixel position `k` pixels on (k ≤ pixels).
fn pixel_plus(at: Pixel, k: u32, pixels: u32) -> Pixel {
    let x = at.x + k;
    let wraps = x >= pixels;
    return Pixel(at.n + select(0u, 1u, wraps), 0u, select(x, x - pixels, wraps));
}

/// Stores a finished block at rows row0.. of the output pixels (m in all, `pixels` an image)
/// and channels col0..col0+3 of `channels`, NCHW: four pixels to a vec4 store where an image
/// is a whole number of vec4s, else one value at a time. Unrolled, so every register of the
/// block is named: a loop indexing the block would keep it in memory (a loop over the lanes
/// for every access on lavapipe), which cost as much as the whole product.
fn store_pixels(acc: Block, row0: u32, col0: u32, m: u32, pixels: u32, channels: u32) {
    let bias = lane_bias(col0, channels);
    var at = pixel_at(row0, 1u, pixels);
    if pixels % 4u == 0u && p.dst_off % 4u == 0u {
        store_pixel_rows4(acc.r0, acc.r1, acc.r2, acc.r3, row0, at, col0, m, pixels, channels, bias);
        at = pixel_plus(at, 4u, pixels);
        store_pixel_rows4(acc.r4, acc.r5, acc.r6, acc.r7, row0 + 4u, at, col0, m, pixels, channels, bias);
        at = pixel_plus(at, 4u, pixels);
        store_pixel_rows4(acc.r8, acc.r9, acc.r10, acc.r11, row0 + 8u, at, col0, m, pixels, channels, bias);
        at = pixel_plus(at, 4u, pixels);
        store_pixel_rows4(acc.r12, acc.r13, acc.r14, acc.r15, row0 + 12u, at, col0, m, pixels, channels, bias);
        return;
    }
    store_pixel_row(acc.r0, row0, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r1, row0 + 1u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r2, row0 + 2u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r3, row0 + 3u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r4, row0 + 4u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r5, row0 + 5u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r6, row0 + 6u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r7, row0 + 7u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r8, row0 + 8u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r9, row0 + 9u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r10, row0 + 10u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r11, row0 + 11u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r12, row0 + 12u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r13, row0 + 13u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r14, row0 + 14u, at, col0, m, pixels, channels, bias);
    at = pixel_plus(at, 1u, pixels);
    store_pixel_row(acc.r15, row0 + 15u, at, col0, m, pixels, channels, bias);
}

@compute @workgroup_size(8)
fn conv_forward_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(subgroup_invocation_id) lane: u32) {
    let origin = block_origin(wg, nwg, lane);
    let row0 = origin.x;
    let col0 = origin.y;
    let pixels = p.out_h * p.out_w;
    let m = p.batch * pixels;
    // Uniform over the subgroup: every lane must stay for the broadcasts.
    if row0 >= m {
        return;
    }
    // This lane's two output pixels (clamped: rows past m repeat the last, never stored) and
    // where their receptive fields start.
    let lo = pixel_at(min(row0 + lane, m - 1u), p.out_h, p.out_w);
    let hi = pixel_at(min(row0 + 8u + lane, m - 1u), p.out_h, p.out_w);
    let in_len = p.in_ch * p.in_h * p.in_w;
    let lo_base = p.src_off + lo.n * in_len;
    let hi_base = p.src_off + hi.n * in_len;
    let lo_y = i32(lo.y * p.stride) - i32(p.padding);
    let lo_x = i32(lo.x * p.stride) - i32(p.padding);
    let hi_y = i32(hi.y * p.stride) - i32(p.padding);
    let hi_x = i32(hi.x * p.stride) - i32(p.padding);
    let fan = p.in_ch * p.kernel * p.kernel;
    var wrow: array<u32, 4>;
    for (var j = 0u; j < 4u; j++) {
        wrow[j] = p.w_off + min(col0 + j, p.out_ch - 1u) * fan;
    }
    var acc: Block;
    if (p.flags & ROW4) != 0u {
        // Each k-step is one kernel row: four neighbours of one image row, two vec4 loads.
        for (var k4 = 0u; k4 < fan / 4u; k4++) {
            let ch = k4 / 4u;
            let ty = i32(k4 % 4u);
            let xl = image_row4(lo_base, ch, lo_y + ty, lo_x);
            let xh = image_row4(hi_base, ch, hi_y + ty, hi_x);
            // ROW4 implies W_VEC4: no branch in the loop (on lavapipe one costs even untaken).
            step_dots(&acc, xl, xh, w[wrow[0] / 4u + k4], w[wrow[1] / 4u + k4], w[wrow[2] / 4u + k4], w[wrow[3] / 4u + k4]);
        }
        store_pixels(acc, row0, col0, m, pixels, p.out_ch);
        return;
    }
    var t0 = Pixel(0u, 0u, 0u);
    for (var k4 = 0u; k4 < (fan + 3u) / 4u; k4++) {
        let t1 = next_pixel(t0, p.kernel, p.kernel);
        let t2 = next_pixel(t1, p.kernel, p.kernel);
        let t3 = next_pixel(t2, p.kernel, p.kernel);
        let xl = vec4<f32>(gather(lo_base, t0.n, lo_y + i32(t0.y), lo_x + i32(t0.x), p.in_ch, p.in_h, p.in_w),
                           gather(lo_base, t1.n, lo_y + i32(t1.y), lo_x + i32(t1.x), p.in_ch, p.in_h, p.in_w),
                           gather(lo_base, t2.n, lo_y + i32(t2.y), lo_x + i32(t2.x), p.in_ch, p.in_h, p.in_w),
                           gather(lo_base, t3.n, lo_y + i32(t3.y), lo_x + i32(t3.x), p.in_ch, p.in_h, p.in_w));
        let xh = vec4<f32>(gather(hi_base, t0.n, hi_y + i32(t0.y), hi_x + i32(t0.x), p.in_ch, p.in_h, p.in_w),
                           gather(hi_base, t1.n, hi_y + i32(t1.y), hi_x + i32(t1.x), p.in_ch, p.in_h, p.in_w),
                           gather(hi_base, t2.n, hi_y + i32(t2.y), hi_x + i32(t2.x), p.in_ch, p.in_h, p.in_w),
                           gather(hi_base, t3.n, hi_y + i32(t3.y), hi_x + i32(t3.x), p.in_ch, p.in_h, p.in_w));
        step_dots(&acc, xl, xh, w_vec4(wrow[0], k4, fan), w_vec4(wrow[1], k4, fan), w_vec4(wrow[2], k4, fan), w_vec4(wrow[3], k4, fan));
        t0 = next_pixel(t3, p.kernel, p.kernel);
    }
    store_pixels(acc, row0, col0, m, pixels, p.out_ch);
}

@compute @workgroup_size(8)
fn conv_backward_input_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                                @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(subgroup_invocation_id) lane: u32) {
    let origin = block_origin(wg, nwg, lane);
    let block = origin.x / ROWS;
    let cls = block / p.row_blocks;
    let row0 = (block % p.row_blocks) * ROWS;
    let col0 = origin.y;
    let s = p.stride;
    if cls >= s * s {
        return;
    }
    // The cls's input pixels iy = qy·s + ry, ix = qx·s + rx, and the output pixel its first
    // live tap reads: oy = qy + oy0 − ty.
    let ry = cls / s;
    let rx = cls % s;
    let qh = (p.in_h + s - 1u - ry) / s;
    let qw = (p.in_w + s - 1u - rx) / s;
    let m = p.batch * qh * qw;
    if row0 >= m {
        return;
    }
    let ky0 = (ry + p.padding) % s;
    let kx0 = (rx + p.padding) % s;
    let oy0 = (ry + p.padding) / s;
    let ox0 = (rx + p.padding) / s;
    let lo = pixel_at(min(row0 + lane, m - 1u), qh, qw);
    let hi = pixel_at(min(row0 + 8u + lane, m - 1u), qh, qw);
    let out_len = p.out_ch * p.out_h * p.out_w;
    let lo_base = p.src_off + lo.n * out_len;
    let hi_base = p.src_off + hi.n * out_len;
    let lo_y = i32(lo.y + oy0);
    let lo_x = i32(lo.x + ox0);
    let hi_y = i32(hi.y + oy0);
    let hi_x = i32(hi.x + ox0);
    let k_len = p.out_ch * p.taps * p.taps;
    let k_pad = (k_len + 3u) & ~3u;
    let n_pad = (p.in_ch + 3u) & ~3u;
    // Taps rows are vec4s along the channels; lanes past them read the last one, store nothing.
    let b_col = (cls * k_pad * n_pad + min(col0, n_pad - 4u)) / 4u;
    let b_stride = n_pad / 4u;
    var acc: Block;
    var t0 = Pixel(0u, 0u, 0u);
    for (var k4 = 0u; k4 < k_pad / 4u; k4++) {
        let t1 = next_pixel(t0, p.taps, p.taps);
        let t2 = next_pixel(t1, p.taps, p.taps);
        let t3 = next_pixel(t2, p.taps, p.taps);
        let xl = vec4<f32>(gather(lo_base, t0.n, lo_y - i32(t0.y), lo_x - i32(t0.x), p.out_ch, p.out_h, p.out_w),
                           gather(lo_base, t1.n, lo_y - i32(t1.y), lo_x - i32(t1.x), p.out_ch, p.out_h, p.out_w),
                           gather(lo_base, t2.n, lo_y - i32(t2.y), lo_x - i32(t2.x), p.out_ch, p.out_h, p.out_w),
                           gather(lo_base, t3.n, lo_y - i32(t3.y), lo_x - i32(t3.x), p.out_ch, p.out_h, p.out_w));
        let xh = vec4<f32>(gather(hi_base, t0.n, hi_y - i32(t0.y), hi_x - i32(t0.x), p.out_ch, p.out_h, p.out_w),
                           gather(hi_base, t1.n, hi_y - i32(t1.y), hi_x - i32(t1.x), p.out_ch, p.out_h, p.out_w),
                           gather(hi_base, t2.n, hi_y - i32(t2.y), hi_x - i32(t2.x), p.out_ch, p.out_h, p.out_w),
                           gather(hi_base, t3.n, hi_y - i32(t3.y), hi_x - i32(t3.x), p.out_ch, p.out_h, p.out_w));
        let b = b_col + 4u * k4 * b_stride;
        step_combine(&acc, xl, xh, w[b], w[b + b_stride], w[b + 2u * b_stride], w[b + 3u * b_stride]);
        t0 = next_pixel(t3, p.taps, p.taps);
    }
    let bias = lane_bias(col0, p.in_ch);
    var at = pixel_at(row0, qh, qw);
    store_class_row(acc.r0, row0, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r1, row0 + 1u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r2, row0 + 2u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r3, row0 + 3u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r4, row0 + 4u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r5, row0 + 5u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r6, row0 + 6u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r7, row0 + 7u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r8, row0 + 8u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r9, row0 + 9u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r10, row0 + 10u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r11, row0 + 11u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r12, row0 + 12u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r13, row0 + 13u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r14, row0 + 14u, at, col0, m, cls, bias);
    at = next_pixel(at, qh, qw);
    store_class_row(acc.r15, row0 + 15u, at, col0, m, cls, bias);
}

/// One input pixel's row of a finished input-product block: channels col0..col0+3 at pixel
/// `at` of stride class `cls`.
fn store_class_row(v: vec4<f32>, row: u32, at: Pixel, col0: u32, m: u32, cls: u32, bias: vec4<f32>) {
    if row < m {
        let plane = p.in_h * p.in_w;
        let s = p.stride;
        let e = (at.n * p.in_ch + col0) * plane + (at.y * s + cls / s) * p.in_w + at.x * s + cls % s;
        put_channels(finish4(v, bias, e, plane), p.dst_off + e, plane, col0, p.in_ch);
    }
}

/// dy channels-last at pixel k, columns col0..col0+3: one vec4 where rows are vec4-aligned, else
/// four values; lanes past the last column read the last ones and store nothing.
fn cl_row(k: u32, col0: u32) -> vec4<f32> {
    let row = p.cl_off + k * p.out_ch;
    if (p.flags & CL_VEC4) != 0u {
        return cl[(row + min(col0, p.out_ch - 4u)) / 4u];
    }
    var v = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t++) {
        let e = row + min(col0 + t, p.out_ch - 1u);
        v[t] = cl[e / 4u][e % 4u];
    }
    return v;
}

/// The weight gradient's shared operand for four pixels from q0 (pixel k, none past `last`):
/// x at this lane's two weights' taps, lo's and hi's; and the pixel after them.
struct WeightTaps {
    lo: vec4<f32>,
    hi: vec4<f32>,
    next: Pixel,
}

fn weight_taps(q0: Pixel, k: u32, last: u32, lo: Pixel, hi: Pixel) -> WeightTaps {
    let q1 = next_pixel(q0, p.out_h, p.out_w);
    let q2 = next_pixel(q1, p.out_h, p.out_w);
    let q3 = next_pixel(q2, p.out_h, p.out_w);
    let in_len = p.in_ch * p.in_h * p.in_w;
    let b0 = p.src_off + min(q0.n, p.batch - 1u) * in_len;
    let b1 = p.src_off + min(q1.n, p.batch - 1u) * in_len;
    let b2 = p.src_off + min(q2.n, p.batch - 1u) * in_len;
    let b3 = p.src_off + min(q3.n, p.batch - 1u) * in_len;
    // A pixel past the chunk reads as the channel past the last one: zero.
    let c0 = select(p.in_ch, 0u, k < last);
    let c1 = select(p.in_ch, 0u, k + 1u < last);
    let c2 = select(p.in_ch, 0u, k + 2u < last);
    let c3 = select(p.in_ch, 0u, k + 3u < last);
    let s = p.stride;
    let pad = i32(p.padding);
    let xl = vec4<f32>(gather(b0, lo.n + c0, i32(q0.y * s + lo.y) - pad, i32(q0.x * s + lo.x) - pad, p.in_ch, p.in_h, p.in_w),
                       gather(b1, lo.n + c1, i32(q1.y * s + lo.y) - pad, i32(q1.x * s + lo.x) - pad, p.in_ch, p.in_h, p.in_w),
                       gather(b2, lo.n + c2, i32(q2.y * s + lo.y) - pad, i32(q2.x * s + lo.x) - pad, p.in_ch, p.in_h, p.in_w),
                       gather(b3, lo.n + c3, i32(q3.y * s + lo.y) - pad, i32(q3.x * s + lo.x) - pad, p.in_ch, p.in_h, p.in_w));
    let xh = vec4<f32>(gather(b0, hi.n + c0, i32(q0.y * s + hi.y) - pad, i32(q0.x * s + hi.x) - pad, p.in_ch, p.in_h, p.in_w),
                       gather(b1, hi.n + c1, i32(q1.y * s + hi.y) - pad, i32(q1.x * s + hi.x) - pad, p.in_ch, p.in_h, p.in_w),
                       gather(b2, hi.n + c2, i32(q2.y * s + hi.y) - pad, i32(q2.x * s + hi.x) - pad, p.in_ch, p.in_h, p.in_w),
                       gather(b3, hi.n + c3, i32(q3.y * s + hi.y) - pad, i32(q3.x * s + hi.x) - pad, p.in_ch, p.in_h, p.in_w));
    return WeightTaps(xl, xh, next_pixel(q3, p.out_h, p.out_w));
}

/// dy NCHW, channel `col` (clamped), the four pixels from element `at` of image plane 0 on.
fn dy_pixels4(at: u32, col: u32) -> vec4<f32> {
    return cl[(p.cl_off + at + min(col, p.out_ch - 1u) * p.out_h * p.out_w) / 4u];
}

@compute @workgroup_size(8)
fn conv_backward_weight_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                                 @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(subgroup_invocation_id) lane: u32) {
    let origin = block_origin(wg, nwg, lane);
    let block = origin.x / ROWS;
    let split = block / p.row_blocks;
    let row0 = (block % p.row_blocks) * ROWS;
    let col0 = origin.y;
    let kk = p.kernel * p.kernel;
    let fan = p.in_ch * kk;
    if split >= p.splits || row0 >= fan {
        return;
    }
    // This lane's two rows: weights (c, ky, kx), clamped (rows past fan are never stored).
    let lo = pixel_at(min(row0 + lane, fan - 1u), p.kernel, p.kernel);
    let hi = pixel_at(min(row0 + 8u + lane, fan - 1u), p.kernel, p.kernel);
    let pixels = p.out_h * p.out_w;
    let total = p.batch * pixels;
    let first = split * p.chunk;
    let last = min(total, first + p.chunk);
    var acc: Block;
    var q0 = pixel_at(first, p.out_h, p.out_w);
    // Two loops, not a branch in one: on lavapipe a branch costs even when not taken.
    if (p.flags & DY_NCHW) != 0u {
        for (var k = first; k < last; k += 4u) {
            let x = weight_taps(q0, k, last, lo, hi);
            // The four pixels are one vec4 of each channel's plane.
            let at = (min(q0.n, p.batch - 1u) * p.out_ch) * pixels + q0.y * p.out_w + q0.x;
            step_dots(&acc, x.lo, x.hi, dy_pixels4(at, col0), dy_pixels4(at, col0 + 1u), dy_pixels4(at, col0 + 2u), dy_pixels4(at, col0 + 3u));
            q0 = x.next;
        }
    } else {
        for (var k = first; k < last; k += 4u) {
            let x = weight_taps(q0, k, last, lo, hi);
            step_combine(&acc, x.lo, x.hi, cl_row(min(k, total - 1u), col0), cl_row(min(k + 1u, total - 1u), col0),
                         cl_row(min(k + 2u, total - 1u), col0), cl_row(min(k + 3u, total - 1u), col0));
            q0 = x.next;
        }
    }
    store_weight_row(acc.r0, row0, col0, split);
    store_weight_row(acc.r1, row0 + 1u, col0, split);
    store_weight_row(acc.r2, row0 + 2u, col0, split);
    store_weight_row(acc.r3, row0 + 3u, col0, split);
    store_weight_row(acc.r4, row0 + 4u, col0, split);
    store_weight_row(acc.r5, row0 + 5u, col0, split);
    store_weight_row(acc.r6, row0 + 6u, col0, split);
    store_weight_row(acc.r7, row0 + 7u, col0, split);
    store_weight_row(acc.r8, row0 + 8u, col0, split);
    store_weight_row(acc.r9, row0 + 9u, col0, split);
    store_weight_row(acc.r10, row0 + 10u, col0, split);
    store_weight_row(acc.r11, row0 + 11u, col0, split);
    store_weight_row(acc.r12, row0 + 12u, col0, split);
    store_weight_row(acc.r13, row0 + 13u, col0, split);
    store_weight_row(acc.r14, row0 + 14u, col0, split);
    store_weight_row(acc.r15, row0 + 15u, col0, split);
}

/// One weight's row (c, ky, kx) = e of a finished weight-gradient block, channels col0..col0+3:
/// into dW [out_ch, fan], or the split's partial [fan, out_ch].
fn store_weight_row(v: vec4<f32>, e: u32, col0: u32, split: u32) {
    let fan = p.in_ch * p.kernel * p.kernel;
    if e < fan {
        if p.splits == 1u {
            put_channels(v, p.dst_off + col0 * fan + e, fan, col0, p.out_ch);
        } else {
            let at = (split * fan + e) * p.out_ch + col0;
            if p.out_ch % 4u == 0u && col0 < p.out_ch {
                dst[at / 4u] = v;
            } else {
                put_channels(v, at, 1u, col0, p.out_ch);
            }
        }
    }
}

@compute @workgroup_size(256)
fn conv_taps(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    let s = p.stride;
    let tt = p.taps * p.taps;
    let k_pad = (p.out_ch * tt + 3u) & ~3u;
    let n_pad = (p.in_ch + 3u) & ~3u;
    let total = s * s * k_pad * n_pad;
    if i >= total {
        // The bias follows the taps.
        if (p.flags & BIAS) != 0u && i < total + p.in_ch {
            put(p.dst_off + i, src[p.bias_off + i - total]);
        }
        return;
    }
    let cls = i / (k_pad * n_pad);
    let k = (i / n_pad) % k_pad;
    let c = i % n_pad;
    let o = k / tt;
    let ky = (cls / s + p.padding) % s + s * ((k % tt) / p.taps);
    let kx = (cls % s + p.padding) % s + s * (k % p.taps);
    var v = 0.0;
    if c < p.in_ch && o < p.out_ch && ky < p.kernel && kx < p.kernel {
        v = src[p.w_off + ((o * p.in_ch + c) * p.kernel + ky) * p.kernel + kx];
    }
    put(p.dst_off + i, v);
}

@compute @workgroup_size(256)
fn conv_reduce_splits(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    let fan = p.in_ch * p.kernel * p.kernel;
    if i >= p.out_ch * fan {
        return;
    }
    let o = i / fan;
    let e = i % fan;
    var sum = 0.0;
    for (var split = 0u; split < p.splits; split++) {
        sum += src[(split * fan + e) * p.out_ch + o];
    }
    put(p.dst_off + i, sum);
}
