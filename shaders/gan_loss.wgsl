// The GAN's losses, with their gradients and the epoch metrics fused in. BCE (hinge 0):
//   d_loss = (mean BCE(D(x), real_label) + mean BCE(D(G(z)), fake_label)) / 2
//   g_loss = mean BCE(D(G(z)), 1)          (the non-saturating generator loss)
//   metrics D(x), D(G(z)): the mean probabilities σ(logit)
// The hinge loss (hinge 1; Lim & Ye 2017, as SNGAN and BigGAN train):
//   d_loss = (mean max(0, 1 − D(x)) + mean max(0, 1 + D(G(z)))) / 2
//   g_loss = −mean D(G(z))
//   metrics D(x), D(G(z)): the mean raw outputs (D's margin: ≥ 1 real, ≤ −1 fake is won)
// `parts` picks what one dispatch computes. G-first order: both from one discriminator pass
// over [real; fake]. D-first order: D's part from that pass, then G's part from the updated
// D's pass over the fake rows alone (g_off 0 there, B when both parts share the logits).
// Bindings: 0 params (GanLossParams), 1 logits (read; [2B] real rows then fake rows, or [B]
//           fake rows for G's part alone), 2 d_grad [2B] (read_write), 3 g_grad [B]
//           (read_write), 4 metrics (read_write)
// Grid: exactly one 256-thread workgroup; it tree-reduces the metrics.

const PART_D: u32 = 1u;
const PART_G: u32 = 2u;

struct GanLossParams {
    batch: u32,
    real_label: f32,
    fake_label: f32,
    metric_slot: u32, // d_loss, g_loss, mean D(x), mean D(G(z)) accumulate at slot..slot+3
    parts: u32,       // PART_D | PART_G
    g_off: u32,       // where G's part finds the fake rows' logits
    hinge: u32,       // 1: the hinge loss, 0: BCE
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: GanLossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> d_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

fn bce_with_logit(x: f32, t: f32) -> f32 {
    return max(x, 0.0) - x * t + log(1.0 + exp(-abs(x)));
}

@compute @workgroup_size(256)
fn gan_loss(@builtin(local_invocation_index) tid: u32) {
    let n = p.batch;
    let inv_n = 1.0 / f32(n);
    var d_loss = 0.0;
    var g_loss = 0.0;
    var d_real = 0.0;
    var d_fake = 0.0;
    let with_d = (p.parts & PART_D) != 0u;
    let with_g = (p.parts & PART_G) != 0u;
    for (var i = tid; i < n; i += 256u) {
        if with_d && p.hinge != 0u {
            let xr = logits[i];
            let xf = logits[n + i];
            d_loss += max(0.0, 1.0 - xr) + max(0.0, 1.0 + xf);
            d_real += xr;
            d_fake += xf;
            d_grad[i] = select(0.0, -0.5 * inv_n, xr < 1.0);
            d_grad[n + i] = select(0.0, 0.5 * inv_n, xf > -1.0);
        } else if with_d {
            let xr = logits[i];
            let xf = logits[n + i];
            let sr = sigmoid(xr);
            let sf = sigmoid(xf);
            d_loss += bce_with_logit(xr, p.real_label) + bce_with_logit(xf, p.fake_label);
            d_real += sr;
            d_fake += sf;
            d_grad[i] = (sr - p.real_label) * 0.5 * inv_n;
            d_grad[n + i] = (sf - p.fake_label) * 0.5 * inv_n;
        }
        if with_g && p.hinge != 0u {
            g_loss -= logits[p.g_off + i];
            g_grad[i] = -inv_n;
        } else if with_g {
            let xf = logits[p.g_off + i];
            g_loss += bce_with_logit(xf, 1.0);
            g_grad[i] = (sigmoid(xf) - 1.0) * inv_n;
        }
    }
    // Every thread reaches the barriers inside workgroup_sum whichever parts are on.
    d_loss = workgroup_sum(tid, d_loss);
    g_loss = workgroup_sum(tid, g_loss);
    d_real = workgroup_sum(tid, d_real);
    d_fake = workgroup_sum(tid, d_fake);
    if tid == 0u {
        let s = p.metric_slot;
        if with_d {
            metrics[s] += 0.5 * d_loss * inv_n;
            metrics[s + 2u] += d_real * inv_n;
            metrics[s + 3u] += d_fake * inv_n;
        }
        if with_g {
            metrics[s + 1u] += g_loss * inv_n;
        }
    }
}
