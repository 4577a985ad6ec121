//! Exact cosine rankings over unit vectors. Pure: no I/O, no knowledge of models or datasets.

/// Candidates `(id, vector)` scored by cosine (dot product of unit vectors) against `query`,
/// best first, ties broken by id.
pub fn rank<'a>(
    candidates: impl Iterator<Item = (u32, &'a [f32])>,
    query: &[f32],
) -> Vec<(u32, f32)> {
    let mut scored: Vec<(u32, f32)> =
        candidates.map(|(i, v)| (i, v.iter().zip(query).map(|(a, b)| a * b).sum())).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

/// Exact ranking of every other vector for query `q` (excluded), best first, ties by id.
pub fn exact_ranking(vectors: &[&[f32]], q: usize) -> Vec<(u32, f32)> {
    let others = vectors.iter().enumerate().filter(|&(i, _)| i != q);
    rank(others.map(|(i, v)| (i as u32, *v)), vectors[q])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_is_by_cosine_then_id_and_skips_the_query() {
        let v: Vec<&[f32]> = vec![&[1.0, 0.0], &[0.6, 0.8], &[0.0, 1.0], &[0.6, 0.8]];
        let r = exact_ranking(&v, 0);
        assert_eq!(r.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3, 2]);
        assert!((r[0].1 - 0.6).abs() < 1e-6);
    }
}
