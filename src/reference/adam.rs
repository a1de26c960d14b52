use crate::nn::AdamConfig;

/// One Adam(W) step at 1-based step `t`, in place, as torch.optim.Adam/AdamW.
pub fn adam(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], t: u32, cfg: &AdamConfig) {
    adam_scaled(param, grad, m, v, t, cfg, 1.0);
}

/// Adam at `lr_scale` times the configured learning rate (a schedule's step).
pub fn adam_scaled(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], t: u32, cfg: &AdamConfig, lr_scale: f64) {
    let (b1, b2) = (f64::from(cfg.beta1), f64::from(cfg.beta2));
    let (lr, eps, wd) = (f64::from(cfg.lr) * lr_scale, f64::from(cfg.eps), f64::from(cfg.weight_decay));
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    for i in 0..param.len() {
        let g = grad[i];
        param[i] -= lr * wd * param[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        param[i] -= (lr / bc1) * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
    }
}
