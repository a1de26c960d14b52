// The importance-weighted bound of a VAE's log-likelihood (Burda et al. 2015): each test image
// is repeated K times down the batch with its own eps, and
//   iwae_log_weight   w = log p(x|z) + log p(z) - log q(z|x)
//                       = -recon + 1/2 Σ (eps² + logvar) - 1/2 Σ z²  (the 2π terms cancel)
//   logsumexp_groups  out[g] = log (1/K Σ_k exp w[g K + k]), stably: max subtracted first
// Bindings: 0 params (IwaeParams), 1 stats [rows, 2*latent] (read; mu | logvar), 2 eps
//           [rows, latent] (read), 3 z [rows, latent] (read), 4 recon_row [rows] (read; the
//           BCE sum per row), 5 out (read_write: w [rows], or the group values [rows / K])
//           logsumexp_groups reads w at binding 4 and writes binding 5.
// Grid: one 256-thread workgroup per row (log weights) or per group (log-sum-exp), folded
//       over x and y.

struct IwaeParams {
    rows: u32,
    latent: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: IwaeParams;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> eps: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> values: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn iwae_log_weight(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) tid: u32) {
    let row = linear_workgroup(wid, nwg);
    var partial = 0.0;
    if row < p.rows {
        for (var j = tid; j < p.latent; j += 256u) {
            let e = eps[row * p.latent + j];
            let zj = z[row * p.latent + j];
            partial += 0.5 * (e * e + stats[row * 2u * p.latent + p.latent + j] - zj * zj);
        }
    }
    let total = workgroup_sum(tid, partial);
    if row < p.rows && tid == 0u {
        out[row] = total - values[row];
    }
}

var<workgroup> group_max: f32;

@compute @workgroup_size(256)
fn logsumexp_groups(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) tid: u32) {
    let g = linear_workgroup(wid, nwg);
    let groups = p.rows / p.k;
    let live = g < groups;
    var m = -3.4e38;
    if live {
        for (var i = tid; i < p.k; i += 256u) {
            m = max(m, values[g * p.k + i]);
        }
    }
    // The maximum by the same tree as the sums: the scratch holds maxima here.
    reduce_scratch[tid] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if tid < s {
            reduce_scratch[tid] = max(reduce_scratch[tid], reduce_scratch[tid + s]);
        }
        workgroupBarrier();
    }
    if tid == 0u {
        group_max = reduce_scratch[0];
    }
    workgroupBarrier();
    let top = group_max;
    var partial = 0.0;
    if live {
        for (var i = tid; i < p.k; i += 256u) {
            partial += exp(values[g * p.k + i] - top);
        }
    }
    let total = workgroup_sum(tid, partial);
    if live && tid == 0u {
        out[g] = top + log(total) - log(f32(p.k));
    }
}
