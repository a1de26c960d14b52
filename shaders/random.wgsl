// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): each value is a pure
// function of (seed, stream, step, element), so a run is reproducible whatever the dispatch order
// and a resumed run draws the same noise.
//   fill_uniform  out[e] in (0, 1), never 0 or 1
//   fill_normal   out[e] ~ N(0, 1) by Box–Muller on pairs of those uniforms
//   fill_labels   out[e] uniform in {0, …, classes − 1}, as an f32 class index: the top bits of
//                 bits · classes (a 32×32-bit product's high word), exact and unbiased to 2^-32
// Each writes out[offset + e] for e < n.
// Bindings: 0 params (RngParams), 1 step (Step: rng_step is the counter's third word),
//           2 out (read_write)
// Grid: one thread per 4 outputs (one Philox block), 256 per workgroup, folded over x and y.

struct RngParams {
    n: u32,
    stream: u32,   // which use site: different noise for each tensor drawn in a step
    seed_lo: u32,
    seed_hi: u32,
    offset: u32,
    classes: u32,  // fill_labels only
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: RngParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// High 32 bits of a 32×32-bit product, from 16-bit halves (WGSL has no 64-bit integers).
fn mul_hi(a: u32, b: u32) -> u32 {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let hi_lo = a_hi * b_lo;
    let cross = ((a_lo * b_lo) >> 16u) + (hi_lo & 0xffffu) + a_lo * b_hi;
    return a_hi * b_hi + (hi_lo >> 16u) + (cross >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        let hi0 = mul_hi(0xD2511F53u, c.x);
        let lo0 = 0xD2511F53u * c.x;
        let hi1 = mul_hi(0xCD9E8D57u, c.z);
        let lo1 = 0xCD9E8D57u * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// (2j + 1) / 2^24 for the top 23 bits j: exact in f32 and strictly inside (0, 1).
fn to_unit(x: u32) -> f32 {
    return f32(x >> 9u) * (1.0 / 8388608.0) + (1.0 / 16777216.0);
}

fn block(i: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(i, p.stream, step.rng_step, 0u), vec2<u32>(p.seed_lo, p.seed_hi));
}

@compute @workgroup_size(256)
fn fill_uniform(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i * 4u >= p.n {
        return;
    }
    let bits = block(i);
    for (var j = 0u; j < 4u; j++) {
        if i * 4u + j < p.n {
            out[p.offset + i * 4u + j] = to_unit(bits[j]);
        }
    }
}

@compute @workgroup_size(256)
fn fill_normal(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i * 4u >= p.n {
        return;
    }
    let bits = block(i);
    var z: array<f32, 4>;
    for (var pair = 0u; pair < 2u; pair++) {
        let r = sqrt(-2.0 * log(to_unit(bits[2u * pair])));
        let theta = 6.283185307179586 * to_unit(bits[2u * pair + 1u]);
        z[2u * pair] = r * cos(theta);
        z[2u * pair + 1u] = r * sin(theta);
    }
    for (var j = 0u; j < 4u; j++) {
        if i * 4u + j < p.n {
            out[p.offset + i * 4u + j] = z[j];
        }
    }
}

@compute @workgroup_size(256)
fn fill_labels(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i * 4u >= p.n {
        return;
    }
    let bits = block(i);
    for (var j = 0u; j < 4u; j++) {
        if i * 4u + j < p.n {
            out[p.offset + i * 4u + j] = f32(mul_hi(bits[j], p.classes));
        }
    }
}
