// Prelude of the subgroup kernels (files named *_subgroup.wgsl; src/gpu/pipelines.rs appends
// it after common.wgsl): one subgroup of 8 lanes owns a 16 × 32 block of C, each lane 16 rows ×
// 4 columns in registers, and these are the block and the 4 × 4 steps that fill it. No bindings,
// no entry points.

const ROWS: u32 = 16u;

/// A lane's 16 rows × 4 columns of C. Named fields, not an array: an array indexed by a loop
/// variable stays in memory, which made the kernels 3× slower on lavapipe.
struct Block {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
    r8: vec4<f32>, r9: vec4<f32>, r10: vec4<f32>, r11: vec4<f32>,
    r12: vec4<f32>, r13: vec4<f32>, r14: vec4<f32>, r15: vec4<f32>,
}

/// The finished block as an array, for the epilogues' loops.
fn rows_of(acc: Block) -> array<vec4<f32>, 16> {
    return array<vec4<f32>, 16>(acc.r0, acc.r1, acc.r2, acc.r3, acc.r4, acc.r5, acc.r6, acc.r7,
                            acc.r8, acc.r9, acc.r10, acc.r11, acc.r12, acc.r13, acc.r14, acc.r15);
}

/// First row and this lane's first column of the subgroup's block.
fn block_origin(wg: vec3<u32>, nwg: vec3<u32>, lane: u32) -> vec2<u32> {
    return vec2<u32>((wg.y + wg.z * nwg.y) * ROWS, wg.x * 32u + lane * 4u);
}

/// Row r of the forward's 4 × 4 step: x holds A(r, kk..kk+3), b0..b3 hold B(kk..kk+3, j).
fn dots(x: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(x, b0), dot(x, b1), dot(x, b2), dot(x, b3));
}

/// Row r of the backward_input's 4 × 4 step: x holds A(r, kk..kk+3), b0..b3 hold B(kk..kk+3, j..j+3).
fn combine(x: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return x.x * b0 + x.y * b1 + x.z * b2 + x.w * b3;
}

/// One k of the backward layouts: x0..x3 hold A(row0..row0+15, kk), bv this lane's B(kk, j..j+3).
fn outer(acc: ptr<function, Block>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, bv: vec4<f32>) {
    (*acc).r0 += x0.x * bv;
    (*acc).r1 += x0.y * bv;
    (*acc).r2 += x0.z * bv;
    (*acc).r3 += x0.w * bv;
    (*acc).r4 += x1.x * bv;
    (*acc).r5 += x1.y * bv;
    (*acc).r6 += x1.z * bv;
    (*acc).r7 += x1.w * bv;
    (*acc).r8 += x2.x * bv;
    (*acc).r9 += x2.y * bv;
    (*acc).r10 += x2.z * bv;
    (*acc).r11 += x2.w * bv;
    (*acc).r12 += x3.x * bv;
    (*acc).r13 += x3.y * bv;
    (*acc).r14 += x3.z * bv;
    (*acc).r15 += x3.w * bv;
}
