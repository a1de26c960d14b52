/// One step of the moving average at 1-based step `t`, in place, as shaders/ema.wgsl:
/// `average.lerp_(value, 1 - min(decay, t / (9 + t)))`.
pub fn ema(average: &mut [f64], value: &[f64], decay: f64, t: u32) {
    let t = f64::from(t);
    let weight = 1.0 - decay.min(t / (9.0 + t));
    for (a, &v) in average.iter_mut().zip(value) {
        *a += weight * (v - *a);
    }
}
