//! A tiny, fixed PRNG (SplitMix64) so that sampling, bootstrap resampling and synthetic data
//! are identical on every platform and every run. Pure.

/// SplitMix64 (Steele, Lea & Flood 2014): one 64-bit state, one multiply-xorshift output.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`); the modulo bias is below 2⁻⁴⁰ for n < 2²⁴.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A uniform float in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Keeps `k` of `items` drawn uniformly without replacement with seed `seed` (a whole
/// Fisher–Yates shuffle with [`SplitMix64`], then the first `k`): the same seed draws the same
/// positions from lists of the same length on every platform. Callers sort what they keep.
pub fn draw<T>(items: &mut Vec<T>, k: usize, seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i + 1);
        items.swap(i, j);
    }
    items.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::{draw, SplitMix64};

    #[test]
    fn a_draw_is_without_replacement_and_fixed_by_its_seed() {
        let mut a: Vec<usize> = (0..100).collect();
        draw(&mut a, 10, 7);
        let mut b: Vec<usize> = (0..100).collect();
        draw(&mut b, 10, 7);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 10, "no position twice: {a:?}");
        let mut c: Vec<usize> = (0..100).collect();
        draw(&mut c, 10, 8);
        assert_ne!(a, c, "another seed, another draw");
        let mut all: Vec<usize> = (0..5).collect();
        draw(&mut all, 9, 1);
        assert_eq!(all.len(), 5, "k past the end keeps everything");
    }

    #[test]
    fn splitmix_matches_reference_vector() {
        // First output of SplitMix64 seeded with 0 (from the reference C implementation).
        assert_eq!(SplitMix64(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn unit_stays_inside_the_open_interval() {
        let mut r = SplitMix64(3);
        assert!((0..1000).map(|_| r.unit()).all(|u| u > 0.0 && u < 1.0));
    }
}
