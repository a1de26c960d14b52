// Class labels into a conditioned layer's input, and the gradient back to the label table. A
// conditioned input is one buffer whose columns are [what the layer saw before | the label's
// vector] (or the other way round); each producer writes its own column window, so the first
// matmul reads one contiguous operand and its weight keeps PyTorch's [out, in] layout.
//   embedding_forward   dst[r, j] = src[label[r], j]: a row of the table (nn.Embedding), or with
//                       ONE_HOT 1 where j / plane == label[r] and 0 elsewhere (src unused): the
//                       one-hot vector at plane 1, or at plane H·W k constant image channels, a
//                       conv layer's label planes; with ADD the vector is added to what dst
//                       holds (a class's prior mean shifting z)
//   embedding_backward  dst[c, j] = Σ_r [label[r] == c] src[r, j]: the scatter-add of the rows'
//                       gradients, done as one thread per table entry summing its rows in order,
//                       so the result is the same every run (no atomics, no float races)
//   copy_columns        dst[r, j] = src[r, j]: places a block (noise, images, G's output) in
//                       its column window
//   class_logit_forward dst[r, 0] = src[r, 0] + src[r, 1 + label[r]]: the projection
//                       discriminator's logit, a shared head plus the row's class head (dim is
//                       1 + classes, the width of src)
//   class_logit_backward dst[r, j] = src[r, 0] where j is 0 or 1 + label[r], else 0: the
//                       logit's gradient to both heads it read (dim = 1 + classes, dst's width)
// Every [r, j] above is read or written at off + r * stride + j of its buffer (the table and
// its gradient are row-major with stride dim).
// Bindings: 0 params (EmbedParams), 1 labels (read: [rows] f32 class indices; unused by
//           copy_columns), 2 src (read), 3 dst (read_write)
// Grid: one thread per output value (rows × dim, or classes × dim for the backward, rows for
//       class_logit_forward), 256 per workgroup, folded over x and y.

struct EmbedParams {
    rows: u32,
    dim: u32,
    classes: u32,
    flags: u32,      // ONE_HOT | ADD
    src_off: u32,
    src_stride: u32,
    dst_off: u32,
    dst_stride: u32,
    label_off: u32,  // labels[label_off + r] is row r's
    plane: u32,      // ONE_HOT: the values each class's entry spans (1 for a vector)
    _pad1: u32,
    _pad2: u32,
}

const ONE_HOT: u32 = 1u;
const ADD: u32 = 2u;

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.dim {
        return;
    }
    let r = i / p.dim;
    let j = i % p.dim;
    let k = u32(labels[p.label_off + r]);
    var v = 0.0;
    if (p.flags & ONE_HOT) != 0u {
        v = select(0.0, 1.0, k == j / p.plane);
    } else {
        v = src[p.src_off + k * p.src_stride + j];
    }
    let at = p.dst_off + r * p.dst_stride + j;
    if (p.flags & ADD) != 0u {
        v += dst[at];
    }
    dst[at] = v;
}

@compute @workgroup_size(256)
fn embedding_backward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.classes * p.dim {
        return;
    }
    let c = i / p.dim;
    let j = i % p.dim;
    // Differentiates `v = src[p.src_off + k * p.src_stride + j]`: each row adds its
    // gradient to the table row it read.
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        if u32(labels[p.label_off + r]) == c {
            acc += src[p.src_off + r * p.src_stride + j];
        }
    }
    dst[p.dst_off + c * p.dst_stride + j] = acc;
}

@compute @workgroup_size(256)
fn copy_columns(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.dim {
        return;
    }
    let r = i / p.dim;
    let j = i % p.dim;
    dst[p.dst_off + r * p.dst_stride + j] = src[p.src_off + r * p.src_stride + j];
}

@compute @workgroup_size(256)
fn class_logit_forward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) tid: u32) {
    let r = linear_workgroup(wid, nwg) * 256u + tid;
    if r >= p.rows {
        return;
    }
    let row = p.src_off + r * p.src_stride;
    dst[p.dst_off + r * p.dst_stride] = src[row] + src[row + 1u + u32(labels[p.label_off + r])];
}

@compute @workgroup_size(256)
fn class_logit_backward(@builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.dim {
        return;
    }
    let r = i / p.dim;
    let j = i % p.dim;
    // Differentiates `src[row] + src[row + 1u + u32(labels[p.label_off + r])]`: both heads
    // read receive the logit's gradient, every other class head none.
    let read = j == 0u || j == 1u + u32(labels[p.label_off + r]);
    dst[p.dst_off + r * p.dst_stride + j] = select(0.0, src[p.src_off + r * p.src_stride], read);
}
