/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011).
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let p0 = u64::from(0xD251_1F53u32) * u64::from(c[0]);
        let p1 = u64::from(0xCD9E_8D57u32) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        k = [k[0].wrapping_add(0x9E37_79B9), k[1].wrapping_add(0xBB67_AE85)];
    }
    c
}

/// (2j + 1) / 2^24 for the top 23 bits j: strictly inside (0, 1), exact in f32.
pub fn to_unit(x: u32) -> f64 {
    f64::from(x >> 9) / 8_388_608.0 + 1.0 / 16_777_216.0
}

fn blocks(n: usize, stream: u32, step: u32, seed: u64) -> impl Iterator<Item = [u32; 4]> {
    let key = [seed as u32, (seed >> 32) as u32];
    (0..n.div_ceil(4) as u32).map(move |i| philox4x32_10([i, stream, step, 0], key))
}

pub fn fill_uniform(n: usize, stream: u32, step: u32, seed: u64) -> Vec<f64> {
    let mut out: Vec<f64> = blocks(n, stream, step, seed).flat_map(|b| b.map(to_unit)).collect();
    out.truncate(n);
    out
}

pub fn fill_normal(n: usize, stream: u32, step: u32, seed: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n + 3);
    for b in blocks(n, stream, step, seed) {
        for pair in 0..2 {
            let r = (-2.0 * to_unit(b[2 * pair]).ln()).sqrt();
            let theta = std::f64::consts::TAU * to_unit(b[2 * pair + 1]);
            out.push(r * theta.cos());
            out.push(r * theta.sin());
        }
    }
    out.truncate(n);
    out
}

/// Class indices uniform in 0..classes: the high word of each 32-bit draw times `classes`.
pub fn fill_labels(n: usize, classes: usize, stream: u32, step: u32, seed: u64) -> Vec<usize> {
    let mut out: Vec<usize> = blocks(n, stream, step, seed).flat_map(|b| b.map(|x| ((u64::from(x) * classes as u64) >> 32) as usize)).collect();
    out.truncate(n);
    out
}
