//! Seeded random tensors (`random`, `random_uniform`).
//!
//! SplitMix64 seeding a xoshiro256++ stream: tiny, fast and identical on every machine, so a
//! seeded op gives the same values on any provider and in the local executor. Without a seed
//! the stream is seeded from the clock. The values do not match NumPy's generator; the
//! contract is the distribution, the shape and reproducibility.

use ndarray::{ArrayD, IxDyn};
use ravproto::ops::Distribution;

struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn new(seed: u64) -> Xoshiro {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Xoshiro([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on `[0, 1)` with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
    })
}

/// A tensor of `shape` drawn from `distribution`.
pub(crate) fn sample(shape: &[usize], seed: Option<u64>, distribution: &Distribution) -> ArrayD<f64> {
    let mut rng = Xoshiro::new(seed_or_clock(seed));
    let count: usize = shape.iter().product();
    let values: Vec<f64> = match *distribution {
        Distribution::Uniform { low, high } => (0..count).map(|_| low + (high - low) * rng.next_f64()).collect(),
        Distribution::Normal { mean, std } => (0..count)
            .map(|_| {
                // Box-Muller; 1 - u keeps the logarithm finite.
                let u1 = 1.0 - rng.next_f64();
                let u2 = rng.next_f64();
                mean + std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            })
            .collect(),
    };
    ArrayD::from_shape_vec(IxDyn(shape), values).expect("one value per element")
}
