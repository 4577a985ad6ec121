//! Retrieval metrics over rankings with graded relevance, confidence intervals and paired
//! tests. Pure functions, no I/O. Definitions follow Järvelin & Kekäläinen (2002) for nDCG,
//! Musgrave et al. (2020) for MAP@R; see docs/metrics.md.

use rayon::prelude::*;

use crate::rng::SplitMix64;

/// Mean relevance of the top `k` (the article's "did it capture the semantics", as a number).
/// Fewer than `k` neighbours count as relevance 0.
pub fn overlap_at_k(ranked_rel: &[f32], k: usize) -> f64 {
    ranked_rel.iter().take(k).map(|&r| f64::from(r)).sum::<f64>() / k as f64
}

/// Precision@k: the share of the top `k` with relevance ≥ `threshold`.
pub fn precision_at_k(ranked_rel: &[f32], k: usize, threshold: f32) -> f64 {
    ranked_rel.iter().take(k).filter(|&&r| r >= threshold).count() as f64 / k as f64
}

fn dcg(rels: impl Iterator<Item = f32>) -> f64 {
    rels.enumerate().map(|(i, r)| f64::from(r) / ((i + 2) as f64).log2()).sum()
}

/// nDCG@k with graded gains (gain = rel, discount 1/log2(rank+1)); `ideal_desc` holds every
/// candidate's relevance sorted descending. 0 when no candidate is relevant at all.
pub fn ndcg_at_k(ranked_rel: &[f32], ideal_desc: &[f32], k: usize) -> f64 {
    let ideal = dcg(ideal_desc.iter().take(k).copied());
    if ideal <= 0.0 {
        return 0.0;
    }
    dcg(ranked_rel.iter().take(k).copied()) / ideal
}

/// MAP@R: with R = number of candidates with rel ≥ τ, the mean over ranks i ≤ R that hold a
/// relevant item of precision@i, divided by R. `None` when R = 0.
pub fn map_at_r(ranked_rel: &[f32], r: usize, threshold: f32) -> Option<f64> {
    if r == 0 {
        return None;
    }
    let mut hits = 0usize;
    let mut sum = 0.0;
    for (i, &rel) in ranked_rel.iter().take(r).enumerate() {
        if rel >= threshold {
            hits += 1;
            sum += hits as f64 / (i + 1) as f64;
        }
    }
    Some(sum / r as f64)
}

/// Reciprocal rank of the first item with rel ≥ τ; 0 when none is ranked.
pub fn reciprocal_rank(ranked_rel: &[f32], threshold: f32) -> f64 {
    ranked_rel.iter().position(|&r| r >= threshold).map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

/// Σ_{i=1}^{min(k, m)} 1 / log2(i + 1): the discount mass of the first `k` ranks when `m`
/// candidates exist.
pub fn discount_sum(k: usize, m: usize) -> f64 {
    (0..k.min(m)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum()
}

/// Expected nDCG@k of a uniformly random ranking of `m` candidates whose mean relevance is
/// `mean_rel`: each rank holds `mean_rel` in expectation, so E[DCG@k] = mean_rel · discount_sum.
/// 0 when no candidate is relevant at all.
pub fn random_ndcg_at_k(mean_rel: f64, ideal_desc: &[f32], k: usize, m: usize) -> f64 {
    let ideal = dcg(ideal_desc.iter().take(k).copied());
    if ideal <= 0.0 {
        return 0.0;
    }
    mean_rel * discount_sum(k, m) / ideal
}

/// Expected overlap@k of a random ranking: `mean_rel` per filled rank, missing ranks count 0.
pub fn random_overlap_at_k(mean_rel: f64, k: usize, m: usize) -> f64 {
    mean_rel * k.min(m) as f64 / k as f64
}

/// Expected precision@k of a random ranking with `r` relevant among `m` candidates.
pub fn random_precision_at_k(r: usize, m: usize, k: usize) -> f64 {
    if m == 0 {
        return 0.0;
    }
    r as f64 / m as f64 * k.min(m) as f64 / k as f64
}

/// Expected MAP@R of a random ranking, approximated by the share of relevant items R / M
/// (exact for R = M; for R ≪ M the expectation of precision at each relevant rank is R / M).
/// `None` when R = 0, as for [`map_at_r`].
pub fn random_map_at_r(r: usize, m: usize) -> Option<f64> {
    (r > 0 && m > 0).then(|| r as f64 / m as f64)
}

/// Expected reciprocal rank of the first of `r` relevant items among `m` shuffled at random,
/// counting 0 when it falls past rank `depth` (as the measured MRR does): O(min(m, depth)).
pub fn random_mrr(m: usize, r: usize, depth: usize) -> f64 {
    if r == 0 || m == 0 {
        return 0.0;
    }
    // P(first relevant at rank i) = P(none in the first i-1) · r / (m - i + 1).
    let mut none_before = 1.0;
    let mut e = 0.0;
    for i in 1..=(m - r + 1).min(depth) {
        let p_here = none_before * r as f64 / (m - i + 1) as f64;
        e += p_here / i as f64;
        none_before *= (m - i + 1 - r) as f64 / (m - i + 1) as f64;
    }
    e
}

/// Mean and 95% percentile-bootstrap interval over queries, with a fixed seed: the reference
/// definition [`mean_ci_many`] computes faster (kept for its equivalence test).
#[cfg(test)]
pub fn mean_ci(values: &[f64], resamples: usize, seed: u64) -> (f64, [f64; 2]) {
    if values.is_empty() {
        return (0.0, [0.0, 0.0]);
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if resamples == 0 {
        return (mean, [mean, mean]);
    }
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (mean, [at(0.025), at(0.975)])
}

/// [`mean_ci`] for many per-query vectors at once: vectors of the same length share each
/// resample (the very draws `mean_ci` makes), and a resample's mean is Σ count_i · v_i / n, so
/// the cost is one pass over the values per resample instead of a random gather per value.
pub fn mean_ci_many(vectors: &[&[f64]], resamples: usize, seed: u64) -> Vec<(f64, [f64; 2])> {
    let mut out = vec![(0.0, [0.0, 0.0]); vectors.len()];
    let mut lengths: Vec<usize> = vectors.iter().map(|v| v.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for n in lengths {
        let group: Vec<usize> = (0..vectors.len()).filter(|&i| vectors[i].len() == n).collect();
        if n == 0 {
            continue;
        }
        let mut means: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); group.len()];
        let mut rng = SplitMix64(seed);
        let mut counts = vec![0u32; n];
        for _ in 0..resamples {
            counts.fill(0);
            for _ in 0..n {
                counts[rng.below(n)] += 1;
            }
            let sums: Vec<f64> = group
                .par_iter()
                .map(|&g| vectors[g].iter().zip(&counts).map(|(v, &c)| v * f64::from(c)).sum())
                .collect();
            for (m, s) in means.iter_mut().zip(sums) {
                m.push(s / n as f64);
            }
        }
        for (m, &g) in means.iter_mut().zip(&group) {
            let mean = vectors[g].iter().sum::<f64>() / n as f64;
            out[g] = if resamples == 0 { (mean, [mean, mean]) } else { (mean, percentiles(m)) };
        }
    }
    out
}

/// The 2.5% and 97.5% points of `means` (sorted in place).
fn percentiles(means: &mut [f64]) -> [f64; 2] {
    means.sort_by(f64::total_cmp);
    let r = means.len();
    let at = |q: f64| means[((q * (r - 1) as f64).round() as usize).min(r - 1)];
    [at(0.025), at(0.975)]
}

/// Paired sign-flip permutation test of mean(a - b) = 0; returns (mean difference, p-value).
pub fn paired_permutation(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.is_empty() {
        return (0.0, 1.0);
    }
    let n = d.len() as f64;
    let obs = d.iter().sum::<f64>() / n;
    let mut rng = SplitMix64(seed);
    let mut extreme = 0usize;
    for _ in 0..resamples {
        let m: f64 =
            d.iter().map(|&x| if rng.next_u64() & 1 == 1 { x } else { -x }).sum::<f64>() / n;
        if m.abs() >= obs.abs() - 1e-12 {
            extreme += 1;
        }
    }
    (obs, (extreme + 1) as f64 / (resamples + 1) as f64)
}

/// Average ranks (1-based) of `x`, ties sharing the mean of their positions.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            out[o] = mean;
        }
        i = j + 1;
    }
    out
}

/// Pearson correlation; 0 when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Spearman's ρ: the Pearson correlation of average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Kendall's τ-b, with ties on either side, in O(n log n) (Knight's algorithm: sort by x then
/// y, count the swaps a merge sort by y needs).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
    let pairs =
        |counts: &mut dyn Iterator<Item = u64>| counts.map(|t| t * (t - 1) / 2).sum::<u64>();
    // Runs of equal x, and of equal (x, y), in x-sorted order.
    let runs = |same: &dyn Fn(usize, usize) -> bool| -> Vec<u64> {
        let mut out = Vec::new();
        let mut len = 1u64;
        for w in idx.windows(2) {
            if same(w[0], w[1]) {
                len += 1;
            } else {
                out.push(len);
                len = 1;
            }
        }
        out.push(len);
        out
    };
    let n1 = pairs(&mut runs(&|a, b| x[a] == x[b]).into_iter());
    let n3 = pairs(&mut runs(&|a, b| x[a] == x[b] && y[a] == y[b]).into_iter());
    let mut ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let swaps = merge_count(&mut ys);
    let mut sorted = ys.clone();
    sorted.sort_by(f64::total_cmp);
    let mut n2 = 0u64;
    let mut len = 1u64;
    for w in sorted.windows(2) {
        if w[0] == w[1] {
            len += 1;
        } else {
            n2 += len * (len - 1) / 2;
            len = 1;
        }
    }
    n2 += len * (len - 1) / 2;
    let n0 = (n as u64) * (n as u64 - 1) / 2;
    // Concordant − discordant = n0 − n1 − n2 + n3 − 2 · swaps.
    let num = n0 as f64 - n1 as f64 - n2 as f64 + n3 as f64 - 2.0 * swaps as f64;
    let den = ((n0 - n1) as f64 * (n0 - n2) as f64).sqrt();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Sorts `v` ascending and returns how many inversions it held (pairs i < j, v[i] > v[j]).
fn merge_count(v: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut swaps = merge_count(&mut v[..mid]) + merge_count(&mut v[mid..]);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if v[j] < v[i] {
            merged.push(v[j]);
            swaps += (mid - i) as u64;
            j += 1;
        } else {
            merged.push(v[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
    swaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn precision_and_overlap_hand_checked() {
        let rel = [0.9, 0.1, 0.5, 0.0];
        assert_eq!(precision_at_k(&rel, 1, 0.3), 1.0);
        assert_eq!(precision_at_k(&rel, 4, 0.3), 0.5);
        assert_eq!(precision_at_k(&rel, 8, 0.3), 0.25);
        assert!((overlap_at_k(&rel, 2) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn ndcg_hand_checked() {
        // ranked [0, 1]: DCG = 0 + 1/log2(3) = 0.6309; ideal [1, 0]: 1. nDCG = 0.6309.
        assert!((ndcg_at_k(&[0.0, 1.0], &[1.0, 0.0], 2) - 0.6309).abs() < 1e-4);
        assert_eq!(ndcg_at_k(&[1.0, 0.0], &[1.0, 0.0], 2), 1.0);
        assert_eq!(ndcg_at_k(&[0.0], &[0.0], 1), 0.0);
    }

    #[test]
    fn map_at_r_hand_checked() {
        // R = 3; relevant at ranks 1 and 3 within the top 3: (1/1 + 2/3) / 3 = 0.5556.
        let rel = [1.0, 0.0, 1.0, 1.0];
        assert!((map_at_r(&rel, 3, 0.5).unwrap() - 0.5556).abs() < 1e-4);
        assert_eq!(map_at_r(&rel, 0, 0.5), None);
    }

    #[test]
    fn reciprocal_rank_and_its_random_expectation() {
        assert_eq!(reciprocal_rank(&[0.0, 0.0, 0.7], 0.5), 1.0 / 3.0);
        assert_eq!(reciprocal_rank(&[0.0], 0.5), 0.0);
        // One relevant among 2: rank 1 or 2 with equal chance → (1 + 1/2)/2 = 0.75.
        assert!((random_mrr(2, 1, 1000) - 0.75).abs() < 1e-12);
        // Counted only to rank 1: 1/2 · 1.
        assert!((random_mrr(2, 1, 1) - 0.5).abs() < 1e-12);
        // All relevant → first is always at rank 1.
        assert!((random_mrr(5, 5, 1000) - 1.0).abs() < 1e-12);
        // One relevant among 4 seen to rank 2: (1 + 1/2) / 4.
        assert!((random_mrr(4, 1, 2) - 0.375).abs() < 1e-12);
    }

    #[test]
    fn random_baselines_hand_checked() {
        // 2 candidates, k = 2: discounts 1 + 1/log2(3) = 1.6309.
        assert!((discount_sum(2, 2) - 1.6309).abs() < 1e-4);
        assert!((discount_sum(5, 2) - 1.6309).abs() < 1e-4, "ranks past m do not count");
        // Relevances [1, 0]: mean 0.5, ideal DCG@2 = 1 → E[nDCG@2] = 0.5 · 1.6309 = 0.8155.
        assert!((random_ndcg_at_k(0.5, &[1.0, 0.0], 2, 2) - 0.8155).abs() < 1e-4);
        assert_eq!(random_ndcg_at_k(0.0, &[0.0, 0.0], 2, 2), 0.0);
        assert!((random_overlap_at_k(0.5, 4, 2) - 0.25).abs() < 1e-12);
        // 1 relevant of 4, k = 2: 1/4 · 2/2 = 0.25; k = 8 with 4 candidates: 1/4 · 4/8.
        assert!((random_precision_at_k(1, 4, 2) - 0.25).abs() < 1e-12);
        assert!((random_precision_at_k(1, 4, 8) - 0.125).abs() < 1e-12);
        assert_eq!(random_map_at_r(0, 4), None);
        assert_eq!(random_map_at_r(4, 4), Some(1.0));
    }

    #[test]
    fn bootstrap_of_constant_is_degenerate_and_seeded() {
        assert_eq!(mean_ci(&[0.5; 20], 200, 1), (0.5, [0.5, 0.5]));
        let v: Vec<f64> = (0..50).map(|i| f64::from(i) / 50.0).collect();
        let (m, ci) = mean_ci(&v, 500, 7);
        assert!(ci[0] < m && m < ci[1]);
        assert_eq!(mean_ci(&v, 500, 7), (m, ci));
    }

    #[test]
    fn shared_resamples_give_the_intervals_of_one_at_a_time() {
        let a: Vec<f64> = (0..200).map(|i| f64::from(i % 13) / 13.0).collect();
        let b: Vec<f64> = (0..200).map(|i| f64::from((i * 7) % 11) / 11.0).collect();
        let c: Vec<f64> = (0..50).map(|i| f64::from(i) / 50.0).collect();
        let many = mean_ci_many(&[&a, &b, &c], 300, 5);
        for (v, got) in [&a, &b, &c].iter().zip(&many) {
            let (m, ci) = mean_ci(v, 300, 5);
            assert!(
                (got.0 - m).abs() < 1e-12
                    && (got.1[0] - ci[0]).abs() < 1e-12
                    && (got.1[1] - ci[1]).abs() < 1e-12,
                "{got:?} vs {m} {ci:?}"
            );
        }
    }

    #[test]
    fn permutation_test_separates_real_and_null_differences() {
        let a: Vec<f64> = (0..100).map(|i| 0.5 + f64::from(i % 7) / 100.0).collect();
        let b: Vec<f64> = a.iter().map(|x| x - 0.05).collect();
        let (d, p) = paired_permutation(&a, &b, 999, 3);
        assert!((d - 0.05).abs() < 1e-12 && p <= 0.002, "{d} {p}");
        let (_, p_same) = paired_permutation(&a, &a, 999, 3);
        assert_eq!(p_same, 1.0);
    }

    proptest! {
        #[test]
        fn oracle_is_never_beaten_and_metrics_stay_in_unit_range(rels in prop::collection::vec(0.0f32..=1.0, 1..40), k in 1usize..12) {
            let mut ideal = rels.clone();
            ideal.sort_by(|a, b| b.total_cmp(a));
            let n = ndcg_at_k(&rels, &ideal, k);
            prop_assert!((0.0..=1.0 + 1e-9).contains(&n));
            prop_assert!(overlap_at_k(&rels, k) <= overlap_at_k(&ideal, k) + 1e-9);
            prop_assert!(precision_at_k(&rels, k, 0.3) <= precision_at_k(&ideal, k, 0.3) + 1e-9);
            let r = ideal.iter().filter(|&&x| x >= 0.3).count();
            if let (Some(m), Some(o)) = (map_at_r(&rels, r, 0.3), map_at_r(&ideal, r, 0.3)) {
                prop_assert!(m <= o + 1e-9 && (0.0..=1.0).contains(&m));
            }
            prop_assert!(reciprocal_rank(&rels, 0.3) <= reciprocal_rank(&ideal, 0.3) + 1e-9);
        }
    }

    #[test]
    fn spearman_and_kendall_hand_checked() {
        // Perfect agreement, perfect reversal.
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&x, &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((kendall_tau_b(&x, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // One swapped pair of 4: 5 concordant, 1 discordant of 6 → τ = 4/6.
        let y = [1.0, 3.0, 2.0, 4.0];
        assert!((kendall_tau_b(&x, &y) - 4.0 / 6.0).abs() < 1e-12);
        // ρ = 1 − 6·Σd² / (n(n² − 1)) = 1 − 6·2/60 = 0.8.
        assert!((spearman(&x, &y) - 0.8).abs() < 1e-12);
        // Ties: x = [1, 1, 2], y = [1, 2, 3]. Pairs: (0,1) tied in x, (0,2) and (1,2)
        // concordant. τ-b = 2 / √((3 − 1)(3 − 0)) = 2/√6.
        let t = kendall_tau_b(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]);
        assert!((t - 2.0 / 6f64.sqrt()).abs() < 1e-12, "{t}");
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 3.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn kendall_matches_the_quadratic_definition_on_random_ties() {
        let mut rng = crate::rng::SplitMix64(3);
        let x: Vec<f64> = (0..300).map(|_| (rng.unit() * 6.0).floor()).collect();
        let y: Vec<f64> = x.iter().map(|v| ((v + rng.unit() * 4.0) * 2.0).floor()).collect();
        let (mut c, mut d, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                // (f64::signum(0.0) is 1.0, so compare instead.)
                let sign = |d: f64| f64::from(u8::from(d > 0.0)) - f64::from(u8::from(d < 0.0));
                let (a, b) = (sign(x[i] - x[j]), sign(y[i] - y[j]));
                if a == 0.0 && b == 0.0 {
                    continue;
                }
                if a == 0.0 {
                    tx += 1.0;
                } else if b == 0.0 {
                    ty += 1.0;
                } else if a == b {
                    c += 1.0;
                } else {
                    d += 1.0;
                }
            }
        }
        let want = (c - d) / ((c + d + tx) * (c + d + ty)).sqrt();
        let got = kendall_tau_b(&x, &y);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}
