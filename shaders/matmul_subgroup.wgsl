// Matmul for adapters whose subgroups are 8 lanes wide and whose memory accesses are dear, such
// as lavapipe: there every storage load or store is a loop over the 8 SIMD lanes (whether it
// moves 1 value or a vec4), while arithmetic and subgroupBroadcast are single vector
// instructions. So the kernels count memory instructions, not flops: the 8 lanes of a
// subgroup share the operand they all need (each lane loads a slice of it and the others read
// that slice from its registers by subgroupBroadcast, with no workgroup memory and no
// barrier), every access moves a vec4, and each lane keeps a 16 × 4 block of C in registers:
// 12 memory instructions per 8 k for 512 multiply-adds, against 16 for 128 in matmul_vec4.wgsl.
// Same MatmulParams, layouts and epilogues as matmul.wgsl:
//   matmul_forward_subgroup          Y = act(X · Wᵀ + b)      A = X, B = Wᵀ: vec4s along k
//   matmul_backward_input_subgroup   dX = (dY · W) ⊙ act'(D)  A = dY along k, B = W along n
//   matmul_backward_weight_subgroup  dW = dYᵀ · X, db = Σ dY     A = dYᵀ along m, B = X along n;
//                                    accumulating into dW runs matmul_vec4.wgsl instead: a
//                                    branch here that read C, even untaken, made it 4× slower
// The launcher picks these kernels only where the adapter's subgroups are exactly 8 wide and B,
// C (and D) are vec4-aligned (see subgroup_fits in src/nn/linear.rs; else matmul_vec4.wgsl or
// matmul.wgsl runs). A must be aligned in the forward; in the backward layouts an unaligned A
// (the 1-wide output layer's dY) takes a slower path that reads it one value at a time
// (FLAG_A_VEC4 clear).
// Bindings: 0 params (uniform MatmulParams, in common.wgsl), 1 a (read), 2 b (read; the forward's bias too),
//           3 c (read_write), 4 d (read; backward_input's activation output); all vec4 arrays
// Grid: workgroup (8) = one subgroup owning a 16 × 32 block of C, each lane 16 rows × 4
//       columns; x = ceil(n / 32), row blocks = ceil(m / 16) over y (and z).

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> d: array<vec4<f32>>;

fn a_scalar(e: u32) -> f32 {
    return a[e / 4u][e % 4u];
}

/// A(row, kk) with the row clamped into the matrix: rows past the edge repeat the last one and
/// their results are never stored.
fn a_at(row: u32, kk: u32) -> f32 {
    return a_scalar(p.a_off + min(row, p.m - 1u) * p.a_row + kk * p.a_col);
}

/// The vec4 of A's row `row` (clamped) holding columns 4·k4..4·k4+3 (A contiguous along k).
fn a_row_vec4(row: u32, k4: u32) -> vec4<f32> {
    return a[(p.a_off + min(row, p.m - 1u) * p.a_row) / 4u + k4];
}

/// Whether C (and D) can be written (read) a vec4 per row at this lane's columns.
fn c_vec4() -> bool {
    return p.n % 4u == 0u && p.c_off % 4u == 0u && p.d_off % 4u == 0u;
}

@compute @workgroup_size(8)
fn matmul_forward_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(subgroup_invocation_id) lane: u32) {
    let origin = block_origin(wg, nwg, lane);
    let row0 = origin.x;
    let col0 = origin.y;
    // Uniform over the subgroup: every lane must stay for the broadcasts.
    if row0 >= p.m {
        return;
    }
    var brow: array<u32, 4>;
    for (var j = 0u; j < 4u; j++) {
        brow[j] = (p.b_off + min(col0 + j, p.n - 1u) * p.b_col) / 4u;
    }
    var acc: Block;
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        // This lane's share of A: rows row0 + lane and row0 + 8 + lane, columns 4·k4..4·k4+3.
        let lo = a_row_vec4(row0 + lane, k4);
        let hi = a_row_vec4(row0 + 8u + lane, k4);
        let b0 = b[brow[0] + k4];
        let b1 = b[brow[1] + k4];
        let b2 = b[brow[2] + k4];
        let b3 = b[brow[3] + k4];
        acc.r0 += dots(subgroupBroadcast(lo, 0u), b0, b1, b2, b3);
        acc.r1 += dots(subgroupBroadcast(lo, 1u), b0, b1, b2, b3);
        acc.r2 += dots(subgroupBroadcast(lo, 2u), b0, b1, b2, b3);
        acc.r3 += dots(subgroupBroadcast(lo, 3u), b0, b1, b2, b3);
        acc.r4 += dots(subgroupBroadcast(lo, 4u), b0, b1, b2, b3);
        acc.r5 += dots(subgroupBroadcast(lo, 5u), b0, b1, b2, b3);
        acc.r6 += dots(subgroupBroadcast(lo, 6u), b0, b1, b2, b3);
        acc.r7 += dots(subgroupBroadcast(lo, 7u), b0, b1, b2, b3);
        acc.r8 += dots(subgroupBroadcast(hi, 0u), b0, b1, b2, b3);
        acc.r9 += dots(subgroupBroadcast(hi, 1u), b0, b1, b2, b3);
        acc.r10 += dots(subgroupBroadcast(hi, 2u), b0, b1, b2, b3);
        acc.r11 += dots(subgroupBroadcast(hi, 3u), b0, b1, b2, b3);
        acc.r12 += dots(subgroupBroadcast(hi, 4u), b0, b1, b2, b3);
        acc.r13 += dots(subgroupBroadcast(hi, 5u), b0, b1, b2, b3);
        acc.r14 += dots(subgroupBroadcast(hi, 6u), b0, b1, b2, b3);
        acc.r15 += dots(subgroupBroadcast(hi, 7u), b0, b1, b2, b3);
    }
    let rows = rows_of(acc);
    var bias = vec4<f32>(0.0);
    if (p.flags & FLAG_BIAS) != 0u {
        for (var j = 0u; j < 4u; j++) {
            let e = p.bias_off + min(col0 + j, p.n - 1u);
            bias[j] = b[e / 4u][e % 4u];
        }
    }
    let whole = c_vec4();
    for (var i = 0u; i < ROWS; i++) {
        let row = row0 + i;
        if row < p.m && col0 < p.n {
            let v = rows[i] + bias;
            let y = vec4<f32>(activate(v.x, p.act, p.slope), activate(v.y, p.act, p.slope),
                              activate(v.z, p.act, p.slope), activate(v.w, p.act, p.slope));
            let at = p.c_off + row * p.n + col0;
            if whole {
                c[at / 4u] = y;
            } else {
                for (var j = 0u; j < min(4u, p.n - col0); j++) {
                    c[(at + j) / 4u][(at + j) % 4u] = y[j];
                }
            }
        }
    }
}

/// This lane's 16 × 4 block of A · B when B(kk, ·) is a row of vec4s (b_col == 1), and the
/// sums over this lane's k of A's 16 rows (for the bias gradient when A = dYᵀ).
struct Product {
    rows: array<vec4<f32>, 16>,
    row_sums: array<vec4<f32>, 4>,
}

/// Eight k of the backward layouts, k0..k0+7: lane l's s holds A(row0..row0+15, k0 + l), brow
/// indexes this lane's B(k0, j..j+3); `left` (uniform) stops at k, so B rows past it are never
/// read. Unrolled because subgroupBroadcast takes only a constant lane. The broadcasts are
/// named before use: naga 30's SPIR-V writer loses subgroup results passed straight into a call
/// inside an `if`.
fn eight_k(acc: ptr<function, Block>, s: array<vec4<f32>, 4>, brow: u32, bstride: u32, left: u32) {
    let x0_0 = subgroupBroadcast(s[0], 0u);
    let x0_1 = subgroupBroadcast(s[1], 0u);
    let x0_2 = subgroupBroadcast(s[2], 0u);
    let x0_3 = subgroupBroadcast(s[3], 0u);
    outer(acc, x0_0, x0_1, x0_2, x0_3, b[brow]);
    if left > 1u {
        let x1_0 = subgroupBroadcast(s[0], 1u);
        let x1_1 = subgroupBroadcast(s[1], 1u);
        let x1_2 = subgroupBroadcast(s[2], 1u);
        let x1_3 = subgroupBroadcast(s[3], 1u);
        outer(acc, x1_0, x1_1, x1_2, x1_3, b[brow + 1u * bstride]);
    }
    if left > 2u {
        let x2_0 = subgroupBroadcast(s[0], 2u);
        let x2_1 = subgroupBroadcast(s[1], 2u);
        let x2_2 = subgroupBroadcast(s[2], 2u);
        let x2_3 = subgroupBroadcast(s[3], 2u);
        outer(acc, x2_0, x2_1, x2_2, x2_3, b[brow + 2u * bstride]);
    }
    if left > 3u {
        let x3_0 = subgroupBroadcast(s[0], 3u);
        let x3_1 = subgroupBroadcast(s[1], 3u);
        let x3_2 = subgroupBroadcast(s[2], 3u);
        let x3_3 = subgroupBroadcast(s[3], 3u);
        outer(acc, x3_0, x3_1, x3_2, x3_3, b[brow + 3u * bstride]);
    }
    if left > 4u {
        let x4_0 = subgroupBroadcast(s[0], 4u);
        let x4_1 = subgroupBroadcast(s[1], 4u);
        let x4_2 = subgroupBroadcast(s[2], 4u);
        let x4_3 = subgroupBroadcast(s[3], 4u);
        outer(acc, x4_0, x4_1, x4_2, x4_3, b[brow + 4u * bstride]);
    }
    if left > 5u {
        let x5_0 = subgroupBroadcast(s[0], 5u);
        let x5_1 = subgroupBroadcast(s[1], 5u);
        let x5_2 = subgroupBroadcast(s[2], 5u);
        let x5_3 = subgroupBroadcast(s[3], 5u);
        outer(acc, x5_0, x5_1, x5_2, x5_3, b[brow + 5u * bstride]);
    }
    if left > 6u {
        let x6_0 = subgroupBroadcast(s[0], 6u);
        let x6_1 = subgroupBroadcast(s[1], 6u);
        let x6_2 = subgroupBroadcast(s[2], 6u);
        let x6_3 = subgroupBroadcast(s[3], 6u);
        outer(acc, x6_0, x6_1, x6_2, x6_3, b[brow + 6u * bstride]);
    }
    if left > 7u {
        let x7_0 = subgroupBroadcast(s[0], 7u);
        let x7_1 = subgroupBroadcast(s[1], 7u);
        let x7_2 = subgroupBroadcast(s[2], 7u);
        let x7_3 = subgroupBroadcast(s[3], 7u);
        outer(acc, x7_0, x7_1, x7_2, x7_3, b[brow + 7u * bstride]);
    }
}

/// The product for any A: lane l holds A(row0..row0+15, k0 + l), read as vec4s along m when
/// FLAG_A_VEC4 says A(·, kk) is contiguous and aligned (dYᵀ), else one value at a time. Two
/// loops rather than a branch inside one: on lavapipe a branch costs even when not taken.
fn product_k_shared(row0: u32, col0: u32, lane: u32) -> Product {
    var acc: Block;
    var sums: array<vec4<f32>, 4>;
    // Lanes past the last column read the last vec4 (n is a multiple of 4) and store nothing.
    let bcol = (p.b_off + min(col0, p.n - 4u)) / 4u;
    let bstride = p.b_row / 4u;
    if (p.flags & FLAG_A_VEC4) != 0u {
        for (var k0 = 0u; k0 < p.k; k0 += 8u) {
            // Zero past k; row groups past m repeat the last one (m is a multiple of 4).
            let kk = min(k0 + lane, p.k - 1u);
            let live = select(0.0, 1.0, k0 + lane < p.k);
            var s: array<vec4<f32>, 4>;
            for (var q = 0u; q < 4u; q++) {
                s[q] = live * a[(p.a_off + min(row0 + 4u * q, p.m - 4u) + kk * p.a_col) / 4u];
                sums[q] += s[q];
            }
            eight_k(&acc, s, bcol + k0 * bstride, bstride, p.k - k0);
        }
    } else {
        for (var k0 = 0u; k0 < p.k; k0 += 8u) {
            let kk = min(k0 + lane, p.k - 1u);
            let live = select(0.0, 1.0, k0 + lane < p.k);
            var s: array<vec4<f32>, 4>;
            for (var q = 0u; q < 4u; q++) {
                let r = row0 + 4u * q;
                s[q] = live * vec4<f32>(a_at(r, kk), a_at(r + 1u, kk), a_at(r + 2u, kk), a_at(r + 3u, kk));
                sums[q] += s[q];
            }
            eight_k(&acc, s, bcol + k0 * bstride, bstride, p.k - k0);
        }
    }
    return Product(rows_of(acc), sums);
}

/// backward_input's product when A = dY is aligned along k: lane l holds rows row0 + l and
/// row0 + 8 + l of A for 4 k at a time, as the forward does.
fn product_rows_shared(row0: u32, col0: u32, lane: u32) -> array<vec4<f32>, 16> {
    var acc: Block;
    let bcol = (p.b_off + min(col0, p.n - 4u)) / 4u;
    let bstride = p.b_row / 4u;
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        let lo = a_row_vec4(row0 + lane, k4);
        let hi = a_row_vec4(row0 + 8u + lane, k4);
        let brow = bcol + 4u * k4 * bstride;
        let b0 = b[brow];
        let b1 = b[brow + bstride];
        let b2 = b[brow + 2u * bstride];
        let b3 = b[brow + 3u * bstride];
        acc.r0 += combine(subgroupBroadcast(lo, 0u), b0, b1, b2, b3);
        acc.r1 += combine(subgroupBroadcast(lo, 1u), b0, b1, b2, b3);
        acc.r2 += combine(subgroupBroadcast(lo, 2u), b0, b1, b2, b3);
        acc.r3 += combine(subgroupBroadcast(lo, 3u), b0, b1, b2, b3);
        acc.r4 += combine(subgroupBroadcast(lo, 4u), b0, b1, b2, b3);
        acc.r5 += combine(subgroupBroadcast(lo, 5u), b0, b1, b2, b3);
        acc.r6 += combine(subgroupBroadcast(lo, 6u), b0, b1, b2, b3);
        acc.r7 += combine(subgroupBroadcast(lo, 7u), b0, b1, b2, b3);
        acc.r8 += combine(subgroupBroadcast(hi, 0u), b0, b1, b2, b3);
        acc.r9 += combine(subgroupBroadcast(hi, 1u), b0, b1, b2, b3);
        acc.r10 += combine(subgroupBroadcast(hi, 2u), b0, b1, b2, b3);
        acc.r11 += combine(subgroupBroadcast(hi, 3u), b0, b1, b2, b3);
        acc.r12 += combine(subgroupBroadcast(hi, 4u), b0, b1, b2, b3);
        acc.r13 += combine(subgroupBroadcast(hi, 5u), b0, b1, b2, b3);
        acc.r14 += combine(subgroupBroadcast(hi, 6u), b0, b1, b2, b3);
        acc.r15 += combine(subgroupBroadcast(hi, 7u), b0, b1, b2, b3);
    }
    return rows_of(acc);
}

@compute @workgroup_size(8)
fn matmul_backward_input_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                                  @builtin(num_workgroups) nwg: vec3<u32>,
                                  @builtin(subgroup_invocation_id) lane: u32) {
    let origin = block_origin(wg, nwg, lane);
    let row0 = origin.x;
    let col0 = origin.y;
    if row0 >= p.m {
        return;
    }
    var rows: array<vec4<f32>, 16>;
    if (p.flags & FLAG_A_VEC4) != 0u {
        rows = product_rows_shared(row0, col0, lane);
    } else {
        rows = product_k_shared(row0, col0, lane).rows;
    }
    if col0 >= p.n {
        return;
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = row0 + i;
        if row < p.m {
            let at = (row * p.n + col0) / 4u;
            var g = vec4<f32>(1.0);
            if p.act != ACT_IDENTITY {
                // Differentiates the previous layer's `activate(v, act, slope)`.
                let y = d[p.d_off / 4u + at];
                g = vec4<f32>(activate_grad_from_output(y.x, p.act, p.slope), activate_grad_from_output(y.y, p.act, p.slope),
                              activate_grad_from_output(y.z, p.act, p.slope), activate_grad_from_output(y.w, p.act, p.slope));
            }
            c[p.c_off / 4u + at] = rows[i] * g;
        }
    }
}

@compute @workgroup_size(8)
fn matmul_backward_weight_subgroup(@builtin(workgroup_id) wg: vec3<u32>,
                                   @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(subgroup_invocation_id) lane: u32) {
    let origin = block_origin(wg, nwg, lane);
    let row0 = origin.x;
    let col0 = origin.y;
    if row0 >= p.m {
        return;
    }
    let product = product_k_shared(row0, col0, lane);
    // db: each lane summed its own k's of the 16 rows; the first column block adds the lanes up.
    if (p.flags & FLAG_BIAS) != 0u && wg.x == 0u {
        var sums: array<vec4<f32>, 4>;
        for (var q = 0u; q < 4u; q++) {
            sums[q] = subgroupAdd(product.row_sums[q]);
        }
        if lane == 0u {
            for (var i = 0u; i < ROWS; i++) {
                let row = row0 + i;
                if row < p.m {
                    let e = p.bias_off + row;
                    c[e / 4u][e % 4u] = sums[i / 4u][i % 4u];
                }
            }
        }
    }
    if col0 >= p.n {
        return;
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = row0 + i;
        if row < p.m {
            c[p.c_off / 4u + (row * p.n + col0) / 4u] = product.rows[i];
        }
    }
}
