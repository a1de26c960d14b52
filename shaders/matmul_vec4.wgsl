// Register-blocked matmul with no workgroup memory and vec4 loads: what lavapipe (and other
// CPU-backed drivers, where barriers are costly) runs fastest. Same MatmulParams, layouts and
// epilogues as matmul.wgsl, each thread owning a 4×4 output block:
//   matmul_forward_vec4          Y = act(X · Wᵀ + b)     vec4 along k of both operands
//   matmul_backward_input_vec4   dX = (dY · W) ⊙ act'(D)  vec4 along k of A and along n of B
//   matmul_backward_weight_vec4  dW (+)= dYᵀ · X, db     vec4 along m of A and along n of B;
//                                the threads of the first column block also sum db. With
//                                k_chunk set, split-K: split s sums k in [s·k_chunk, (s+1)·k_chunk)
//                                into its own m × n slice of C from c_off (no db, no accumulate)
//   matmul_reduce_splits_vec4    C[c_off + i] = Σ_s A[a_off + s·m·n + i], in split order: no
//                                atomics, the same sum every run
// The launcher picks them only when the vectorised extents, the row strides and the offsets
// are multiples of 4 (else matmul.wgsl runs).
// Bindings: 0 params (uniform MatmulParams, in common.wgsl), 1 a (read, vec4), 2 b (read, vec4; the forward's
//           bias too), 3 c (read_write), 4 d (read; backward_input's activation output)
// Grid: workgroup (8, 8): x = ceil(n / 32), y (and z) = ceil(m / 32), times the splits in
//       backward_weight; reduce_splits: 64 threads a workgroup, one per vec4 of C.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;

fn block_origin(gid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    return vec2<u32>((gid.y + gid.z * nwg.y * 8u) * 4u, gid.x * 4u);
}

fn bias_at(col: u32) -> f32 {
    let e = p.bias_off + col;
    return b[e / 4u][e % 4u];
}

@compute @workgroup_size(8, 8)
fn matmul_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
    let origin = block_origin(gid, nwg);
    let row0 = origin.x;
    let col0 = origin.y;
    if row0 >= p.m || col0 >= p.n {
        return;
    }
    // Rows and columns past the edge repeat the last one; their results are never stored.
    var arow: array<u32, 4>;
    var brow: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        arow[i] = (p.a_off + min(row0 + i, p.m - 1u) * p.a_row) / 4u;
        brow[i] = (p.b_off + min(col0 + i, p.n - 1u) * p.b_col) / 4u;
    }
    var acc: array<vec4<f32>, 4>;
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        let b0 = b[brow[0] + k4];
        let b1 = b[brow[1] + k4];
        let b2 = b[brow[2] + k4];
        let b3 = b[brow[3] + k4];
        for (var i = 0u; i < 4u; i++) {
            let av = a[arow[i] + k4];
            acc[i] += vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3));
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if row < p.m && col < p.n {
                var v = acc[i][j];
                if (p.flags & FLAG_BIAS) != 0u {
                    v += bias_at(col);
                }
                c[p.c_off + row * p.n + col] = activate(v, p.act, p.slope);
            }
        }
    }
}

@compute @workgroup_size(8, 8)
fn matmul_backward_input_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                              @builtin(num_workgroups) nwg: vec3<u32>) {
    let origin = block_origin(gid, nwg);
    let row0 = origin.x;
    let col0 = origin.y;
    if row0 >= p.m || col0 >= p.n {
        return;
    }
    var arow: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        arow[i] = (p.a_off + min(row0 + i, p.m - 1u) * p.a_row) / 4u;
    }
    // n is a multiple of 4, so the block's four columns are one aligned vec4 of each B row.
    let bcol = (p.b_off + col0) / 4u;
    let bstride = p.b_row / 4u;
    var acc: array<vec4<f32>, 4>;
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        let bk = bcol + 4u * k4 * bstride;
        let b0 = b[bk];
        let b1 = b[bk + bstride];
        let b2 = b[bk + 2u * bstride];
        let b3 = b[bk + 3u * bstride];
        for (var i = 0u; i < 4u; i++) {
            let av = a[arow[i] + k4];
            acc[i] += av.x * b0 + av.y * b1 + av.z * b2 + av.w * b3;
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + i;
        if row < p.m {
            for (var j = 0u; j < 4u; j++) {
                let at = row * p.n + col0 + j;
                var g = 1.0;
                if p.act != ACT_IDENTITY {
                    // Differentiates the previous layer's `activate(v, act, slope)`.
                    g = activate_grad_from_output(d[p.d_off + at], p.act, p.slope);
                }
                c[p.c_off + at] = acc[i][j] * g;
            }
        }
    }
}

@compute @workgroup_size(8, 8)
fn matmul_backward_weight_vec4(@builtin(workgroup_id) wid: vec3<u32>,
                               @builtin(local_invocation_id) lid: vec3<u32>,
                               @builtin(num_workgroups) nwg: vec3<u32>) {
    // The weight gradient's k (batch·pixels for a convolution) can be long against few output
    // blocks: then its splits stack along y, each summing one chunk of k.
    let row_groups = (p.m + 31u) / 32u;
    let group = wid.y + wid.z * nwg.y;
    let split = group / row_groups;
    let row0 = ((group % row_groups) * 8u + lid.y) * 4u;
    let col0 = (wid.x * 8u + lid.x) * 4u;
    let chunk = select(p.k, p.k_chunk, p.k_chunk != 0u);
    let k_begin = split * chunk;
    if row0 >= p.m || col0 >= p.n || k_begin >= p.k {
        return;
    }
    let k_end = min(p.k, k_begin + chunk);
    // m and n are multiples of 4: A(·, k) and B(k, ·) are aligned vec4s of the rows of dY and X.
    let astride = p.a_col / 4u;
    let bstride = p.b_row / 4u;
    let a0 = (p.a_off + row0) / 4u;
    let b0 = (p.b_off + col0) / 4u;
    let bias_here = (p.flags & FLAG_BIAS) != 0u && col0 == 0u;
    var acc: array<vec4<f32>, 4>;
    var bias = vec4<f32>(0.0);
    for (var kk = k_begin; kk < k_end; kk++) {
        let av = a[a0 + kk * astride];
        let bv = b[b0 + kk * bstride];
        acc[0] += av.x * bv;
        acc[1] += av.y * bv;
        acc[2] += av.z * bv;
        acc[3] += av.w * bv;
        bias += av;
    }
    let accumulate = (p.flags & FLAG_ACCUMULATE) != 0u;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + i;
        for (var j = 0u; j < 4u; j++) {
            let at = p.c_off + split * p.m * p.n + row * p.n + col0 + j;
            c[at] = select(acc[i][j], c[at] + acc[i][j], accumulate);
        }
        if bias_here {
            let at = p.bias_off + row;
            c[at] = select(bias[i], c[at] + bias[i], accumulate);
        }
    }
}

@compute @workgroup_size(64)
fn matmul_reduce_splits_vec4(@builtin(workgroup_id) wid: vec3<u32>,
                             @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 64u + tid;
    let slice = p.m * p.n / 4u;
    if i >= slice {
        return;
    }
    let splits = (p.k + p.k_chunk - 1u) / p.k_chunk;
    var sum = a[p.a_off / 4u + i];
    for (var s = 1u; s < splits; s++) {
        sum += a[p.a_off / 4u + s * slice + i];
    }
    let at = p.c_off + 4u * i;
    c[at] = sum.x;
    c[at + 1u] = sum.y;
    c[at + 2u] = sum.z;
    c[at + 3u] = sum.w;
}
