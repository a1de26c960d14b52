// The VAE's reparameterisation and its Gaussian KL term KL(N(mu, exp(logvar)) || N(0, I)).
// stats holds each row as [mu (latent) | logvar (latent)], the encoder head's output.
//   reparam_kl_forward   z = mu + exp(logvar/2) * eps;  kl_row = -1/2 Σ (1 + logvar - mu² - exp(logvar))
//   reparam_kl_backward  dstats from dz (the decoder's gradient) plus grad_scale * dKL
// Bindings: 0 params (KlParams), 1 stats [rows, 2*latent] (read), 2 eps [rows, latent] (read),
//           3 z [rows, latent] (read_write: forward writes z, backward reads dz from it),
//           4 out (read_write: forward kl_row [rows], backward dstats [rows, 2*latent])
// Grid: forward one thread per row (latent sizes are small: a workgroup reduction per row was
//       9 barriers for 32 values), 64 per workgroup; backward one thread per (row, latent)
//       element, 256 per workgroup. Both fold over x and y.

struct KlParams {
    rows: u32,
    latent: u32,
    grad_scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: KlParams;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> eps: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn reparam_kl_forward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) tid: u32) {
    let row = linear_workgroup(wid, nwg) * 64u + tid;
    if row >= p.rows {
        return;
    }
    var total = 0.0;
    for (var j = 0u; j < p.latent; j++) {
        let mu = stats[row * 2u * p.latent + j];
        let lv = stats[row * 2u * p.latent + p.latent + j];
        z[row * p.latent + j] = mu + exp(0.5 * lv) * eps[row * p.latent + j];
        total += 1.0 + lv - mu * mu - exp(lv);
    }
    out[row] = -0.5 * total;
}

@compute @workgroup_size(256)
fn reparam_kl_backward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) tid: u32) {
    let i = linear_workgroup(wid, nwg) * 256u + tid;
    if i >= p.rows * p.latent {
        return;
    }
    let row = i / p.latent;
    let j = i % p.latent;
    let mu_at = row * 2u * p.latent + j;
    let lv_at = mu_at + p.latent;
    let mu = stats[mu_at];
    let lv = stats[lv_at];
    let dz = z[i];
    let s = p.grad_scale;
    // Differentiates `z = mu + exp(0.5 * lv) * eps` and `-1/2 (1 + lv - mu² - exp(lv))`.
    out[mu_at] = dz + s * mu;
    out[lv_at] = dz * eps[i] * 0.5 * exp(0.5 * lv) + s * 0.5 * (exp(lv) - 1.0);
}
