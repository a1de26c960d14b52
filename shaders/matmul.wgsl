// Tiled matmul with register blocking, in the three layouts an MLP's training needs, with fused
// epilogues. C[m, n] = sum_k A(m, k) * B(k, n), where A and B are read through strides so one
// core serves every layout:
//   matmul_forward          Y = act(X · Wᵀ + b)         A = X [rows, in], B = Wᵀ (W [out, in])
//   matmul_backward_input   dX = (dY · W) ⊙ act'(D)     A = dY [rows, out], B = W [out, in]
//   matmul_backward_weight  dW (+)= dYᵀ · X, db (+)= Σ dY  A = dYᵀ, B = X; db is the extra
//                           column n == p.n of B taken as all ones, so it costs no dispatch.
//   matmul_naive            the forward's arithmetic with one thread per output and no
//                           workgroup memory: the baseline `wgen bench kernels` compares against.
// Bindings: 0 params (uniform MatmulParams, in common.wgsl), 1 a (read), 2 b (read; forward also reads the bias
//           here), 3 c (read_write), 4 d (read; backward_input's activation output, else unused).
// Grid: workgroup (16, 16); x = ceil(columns / 64), rows tiles = ceil(m / 64) over y (and z).
// Each thread owns a 4×4 block of a 64×64 output tile; K advances 16 at a time.
// matmul_naive: x = ceil(n / 16), y (and z) = ceil(m / 16), one output per thread.

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;

var<workgroup> a_tile: array<f32, 1024>; // [TILE_K][TILE], k-major so the inner loop reads rows
var<workgroup> b_tile: array<f32, 1024>; // [TILE_K][TILE]

fn load_a(row: u32, kk: u32) -> f32 {
    if row < p.m && kk < p.k {
        return a[p.a_off + row * p.a_row + kk * p.a_col];
    }
    return 0.0;
}

fn load_b(kk: u32, col: u32, ones_column: bool) -> f32 {
    if kk < p.k {
        if col < p.n {
            return b[p.b_off + kk * p.b_row + col * p.b_col];
        }
        if ones_column && col == p.n {
            return 1.0;
        }
    }
    return 0.0;
}

// Accumulates this thread's 4×4 block; every thread calls it so the barriers stay uniform.
fn tile_product(row0: u32, col0: u32, lid: vec3<u32>, ones_column: bool) -> array<f32, 16> {
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        // 1024 elements per tile, 4 per thread. Let consecutive threads walk the operand's
        // contiguous axis so their global reads coalesce.
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            var kk: u32;
            var mm: u32;
            if p.a_col == 1u {
                kk = e % TILE_K;
                mm = e / TILE_K;
            } else {
                mm = e % TILE;
                kk = e / TILE;
            }
            a_tile[kk * TILE + mm] = load_a(row0 + mm, k0 + kk);
            var bk: u32;
            var bn: u32;
            if p.b_col == 1u {
                bn = e % TILE;
                bk = e / TILE;
            } else {
                bk = e % TILE_K;
                bn = e / TILE_K;
            }
            b_tile[bk * TILE + bn] = load_b(k0 + bk, col0 + bn, ones_column);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE + lid.y * 4u + i];
                bv[i] = b_tile[kk * TILE + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}

fn tile_origin(wid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    return vec2<u32>((wid.y + wid.z * nwg.y) * TILE, wid.x * TILE);
}

@compute @workgroup_size(16, 16)
fn matmul_forward(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let origin = tile_origin(wid, nwg);
    let acc = tile_product(origin.x, origin.y, lid, false);
    let has_bias = (p.flags & FLAG_BIAS) != 0u;
    for (var i = 0u; i < 4u; i++) {
        let row = origin.x + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = origin.y + lid.x * 4u + j;
            if row < p.m && col < p.n {
                var v = acc[i * 4u + j];
                if has_bias {
                    v += b[p.bias_off + col];
                }
                c[p.c_off + row * p.n + col] = activate(v, p.act, p.slope);
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_backward_input(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let origin = tile_origin(wid, nwg);
    let acc = tile_product(origin.x, origin.y, lid, false);
    for (var i = 0u; i < 4u; i++) {
        let row = origin.x + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = origin.y + lid.x * 4u + j;
            if row < p.m && col < p.n {
                let at = row * p.n + col;
                var g = 1.0;
                if p.act != ACT_IDENTITY {
                    // Differentiates the previous layer's `activate(v, act, slope)`.
                    g = activate_grad_from_output(d[p.d_off + at], p.act, p.slope);
                }
                c[p.c_off + at] = acc[i * 4u + j] * g;
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_backward_weight(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
    let origin = tile_origin(wid, nwg);
    let has_bias = (p.flags & FLAG_BIAS) != 0u;
    let acc = tile_product(origin.x, origin.y, lid, has_bias);
    let accumulate = (p.flags & FLAG_ACCUMULATE) != 0u;
    for (var i = 0u; i < 4u; i++) {
        let row = origin.x + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = origin.y + lid.x * 4u + j;
            if row < p.m {
                var at = 0xffffffffu;
                if col < p.n {
                    at = p.c_off + row * p.n + col;
                } else if has_bias && col == p.n {
                    at = p.bias_off + row;
                }
                if at != 0xffffffffu {
                    let v = acc[i * 4u + j];
                    c[at] = select(v, c[at] + v, accumulate);
                }
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.y + gid.z * nwg.y * 16u;
    let col = gid.x;
    if row >= p.m || col >= p.n {
        return;
    }
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        acc = fma(load_a(row, kk), load_b(kk, col, false), acc);
    }
    if (p.flags & FLAG_BIAS) != 0u {
        acc += b[p.bias_off + col];
    }
    c[p.c_off + row * p.n + col] = activate(acc, p.act, p.slope);
}
