//! Exact cosine rankings over unit vectors. Pure: no I/O, no knowledge of models or datasets.
//!
//! [`top_lists`] ranks every image against every other one without an N×N matrix: the rows
//! are cut into blocks, each pair of blocks (I ≤ J) is multiplied once (`S_IJ = V_I V_Jᵀ`, a
//! matrix product at BLAS speed), and its scores serve the queries of block I (rows of S_IJ)
//! and of block J (its columns) alike, so half of the N² dot products are computed. Each
//! query keeps only a bounded buffer of candidates (a floor rises as the buffer fills), so
//! memory is N × the longest list asked for, not N².

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

/// Rows per block: a 2048 × 2048 score block is 16 MB, large enough for the matrix product to
/// run near peak and small enough to stay in memory many times over.
const BLOCK: usize = 2048;

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

/// Exact ranking of every other vector for query `q` (excluded), best first, ties by id (the
/// brute-force reference `top_lists` is tested against).
#[cfg(test)]
pub fn exact_ranking(vectors: &[&[f32]], q: usize) -> Vec<(u32, f32)> {
    let others = vectors.iter().enumerate().filter(|&(i, _)| i != q);
    rank(others.map(|(i, v)| (i as u32, *v)), vectors[q])
}

/// One query's best neighbours: `(score, id)`, best first, ties by id, the query excluded.
pub type TopList = Vec<(f32, u32)>;

/// Best first; equal scores by ascending id.
#[allow(clippy::trivially_copy_pass_by_ref)] // the shape sort and select_nth want
fn better(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// A query's candidate buffer: everything scoring at least `floor`, compacted to the best
/// `keep` whenever it fills. Its capacity is fixed at twice `keep` (a compaction every `keep`
/// insertions at most), so N queries hold at most 2 · N · keep candidates however the scores
/// fall.
struct Candidates {
    buf: Vec<(f32, u32)>,
    keep: usize,
    floor: f32,
}

impl Candidates {
    fn new(keep: usize) -> Self {
        Self { buf: Vec::with_capacity(Self::capacity(keep)), keep, floor: f32::NEG_INFINITY }
    }

    fn capacity(keep: usize) -> usize {
        keep + keep.max(16)
    }

    /// Offers `scores[j]` for ids `first + j`, skipping `skip` (the query itself). Scores are
    /// compared with the floor 16 at a time into a bit mask (vectorised, no branch per
    /// score), and only the set bits are visited, so a chunk with nothing good enough costs a
    /// few instructions and a good score costs no mispredicted branch.
    fn offer(&mut self, scores: &[f32], first: u32, skip: Option<u32>) {
        const CHUNK: usize = 16;
        if self.keep == 0 {
            return;
        }
        for (c, chunk) in scores.chunks(CHUNK).enumerate() {
            let floor = self.floor;
            let mut mask =
                chunk.iter().enumerate().fold(0u32, |m, (j, &s)| m | (u32::from(s >= floor) << j));
            let base = first + (c * CHUNK) as u32;
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                // The floor may have risen inside this chunk (a compaction).
                if chunk[j] >= self.floor {
                    self.push(chunk[j], base + j as u32, skip);
                }
            }
        }
    }

    fn push(&mut self, s: f32, id: u32, skip: Option<u32>) {
        if Some(id) == skip {
            return;
        }
        if self.buf.len() == Self::capacity(self.keep) {
            self.compact();
            if s < self.floor {
                return;
            }
        }
        self.buf.push((s, id));
    }

    fn compact(&mut self) {
        if self.buf.len() > self.keep {
            self.buf.select_nth_unstable_by(self.keep - 1, better);
            self.buf.truncate(self.keep);
            self.floor = self.buf.iter().map(|c| c.0).fold(f32::INFINITY, f32::min);
        }
    }

    fn finish(mut self) -> TopList {
        self.buf.sort_unstable_by(better);
        self.buf.truncate(self.keep);
        self.buf.shrink_to_fit();
        self.buf
    }
}

/// The exact top `keep[q]` neighbours of every row `q` of `vectors` (`n × dim`, row-major,
/// unit length) among all other rows. `progress` gets the fraction of the work done.
pub fn top_lists(
    vectors: &[f32],
    dim: usize,
    keep: &[usize],
    progress: &(dyn Fn(f64) + Sync),
) -> Vec<TopList> {
    let n = keep.len();
    assert_eq!(vectors.len(), n * dim, "vectors must be n × dim");
    let v = MatRef::from_row_major_slice(vectors, n, dim);
    let mut cands: Vec<Candidates> = keep.iter().map(|&k| Candidates::new(k.min(n - 1))).collect();
    let blocks: Vec<(usize, usize)> =
        (0..n).step_by(BLOCK).map(|s| (s, BLOCK.min(n - s))).collect();
    let pairs = blocks.len() * (blocks.len() + 1) / 2;
    let mut done = 0;
    let mut scores = Mat::<f32>::zeros(BLOCK, BLOCK);
    let mut rows: Vec<f32> = Vec::with_capacity(BLOCK * BLOCK);
    for (bi, &(i0, ni)) in blocks.iter().enumerate() {
        for &(j0, nj) in &blocks[bi..] {
            let mut s = scores.as_mut().submatrix_mut(0, 0, ni, nj);
            let (vi, vj) = (v.subrows(i0, ni), v.subrows(j0, nj));
            matmul(s.as_mut(), Accum::Replace, vi, vj.transpose(), 1.0, Par::rayon(0));
            let s = scores.as_ref().submatrix(0, 0, ni, nj);
            // Columns of S_IJ (contiguous in faer's column-major layout) rank block I for the
            // queries of block J.
            let (head, tail) = cands.split_at_mut(j0);
            let diagonal = i0 == j0;
            tail[..nj].par_iter_mut().enumerate().for_each(|(c, cand)| {
                let col = s.col(c).try_as_col_major().map(faer::col::generic::Col::as_slice);
                let skip = diagonal.then_some((j0 + c) as u32);
                if let Some(col) = col {
                    cand.offer(col, i0 as u32, skip);
                }
            });
            if !diagonal {
                // Rows of S_IJ rank block J for the queries of block I: transposed once so
                // that they too are read contiguously.
                transpose_into(s, &mut rows);
                head[i0..i0 + ni].par_iter_mut().zip(rows.par_chunks(nj)).for_each(
                    |(cand, row)| {
                        cand.offer(row, j0 as u32, None);
                    },
                );
            }
            done += 1;
            progress(f64::from(done) / pairs as f64);
        }
    }
    cands.into_par_iter().map(Candidates::finish).collect()
}

/// Query rows per block of [`top_lists_of`]: a block's scores against one [`BLOCK`] of
/// candidates are 2048 × 256 floats (2 MB) per thread.
const QUERY_BLOCK: usize = 256;

/// The exact top `keep[j]` neighbours of rows `queries[j]` of `vectors` (`n × dim`, row-major,
/// unit length) among all other rows: a sample of queries against the whole gallery, in
/// O(queries × n) time and O(queries × keep) memory. Blocks of [`QUERY_BLOCK`] queries run in
/// parallel, each multiplied with every block of candidates in turn. With every row a query it
/// is [`top_lists`] (which computes half the products).
pub fn top_lists_of(
    vectors: &[f32],
    dim: usize,
    queries: &[usize],
    keep: &[usize],
    progress: &(dyn Fn(f64) + Sync),
) -> Vec<TopList> {
    let n = vectors.len() / dim.max(1);
    assert_eq!(vectors.len(), n * dim, "vectors must be n × dim");
    assert_eq!(queries.len(), keep.len(), "one list length per query");
    if queries.len() == n && queries.iter().enumerate().all(|(j, &q)| j == q) {
        return top_lists(vectors, dim, keep, progress);
    }
    let v = MatRef::from_row_major_slice(vectors, n, dim);
    let blocks: Vec<usize> = (0..queries.len()).step_by(QUERY_BLOCK).collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    blocks
        .par_iter()
        .flat_map_iter(|&b0| {
            let ids = &queries[b0..(b0 + QUERY_BLOCK).min(queries.len())];
            let mut q = Vec::with_capacity(ids.len() * dim);
            for &i in ids {
                q.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
            }
            let q = MatRef::from_row_major_slice(&q, ids.len(), dim);
            let mut cands: Vec<Candidates> =
                keep[b0..b0 + ids.len()].iter().map(|&k| Candidates::new(k.min(n - 1))).collect();
            let mut scores = Mat::<f32>::zeros(BLOCK, ids.len());
            for j0 in (0..n).step_by(BLOCK) {
                let nj = BLOCK.min(n - j0);
                let mut s = scores.as_mut().submatrix_mut(0, 0, nj, ids.len());
                // S = V_J Qᵀ: column c holds query c's scores of candidates j0.., contiguous.
                matmul(s.as_mut(), Accum::Replace, v.subrows(j0, nj), q.transpose(), 1.0, Par::Seq);
                let s = scores.as_ref().submatrix(0, 0, nj, ids.len());
                for (c, cand) in cands.iter_mut().enumerate() {
                    if let Some(col) = s.col(c).try_as_col_major() {
                        cand.offer(col.as_slice(), j0 as u32, Some(ids[c] as u32));
                    }
                }
            }
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(finished as f64 / blocks.len() as f64);
            cands.into_iter().map(Candidates::finish).collect::<Vec<_>>()
        })
        .collect()
}

/// Copies column-major `s` (`r × c`) into `out` row-major (`out[i·c + j] = s[i, j]`): bands of
/// 64 rows in parallel, each moved through 16 × 16 tiles on the stack so that reads and writes
/// are both contiguous runs.
fn transpose_into(s: MatRef<'_, f32>, out: &mut Vec<f32>) {
    const BAND: usize = 64;
    const T: usize = 16;
    let (r, c) = (s.nrows(), s.ncols());
    out.clear();
    out.resize(r * c, 0.0);
    let cols: Vec<&[f32]> =
        (0..c).map(|j| s.col(j).try_as_col_major().map_or(&[][..], |col| col.as_slice())).collect();
    out.par_chunks_mut(BAND * c).enumerate().for_each(|(b, band)| {
        let r0 = b * BAND;
        let rows = band.len() / c;
        let mut tile = [[0f32; T]; T];
        for i0 in (0..rows).step_by(T) {
            let ti = T.min(rows - i0);
            for j0 in (0..c).step_by(T) {
                let tj = T.min(c - j0);
                for (jj, t) in tile.iter_mut().enumerate().take(tj) {
                    t[..ti].copy_from_slice(&cols[j0 + jj][r0 + i0..r0 + i0 + ti]);
                }
                for ii in 0..ti {
                    let dst = &mut band[(i0 + ii) * c + j0..][..tj];
                    for (jj, d) in dst.iter_mut().enumerate() {
                        *d = tile[jj][ii];
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random_unit(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64(seed);
        let mut v: Vec<f32> = (0..n * dim).map(|_| rng.unit() as f32 - 0.5).collect();
        for row in v.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    #[test]
    fn ranking_is_by_cosine_then_id_and_skips_the_query() {
        let v: Vec<&[f32]> = vec![&[1.0, 0.0], &[0.6, 0.8], &[0.0, 1.0], &[0.6, 0.8]];
        let r = exact_ranking(&v, 0);
        assert_eq!(r.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3, 2]);
        assert!((r[0].1 - 0.6).abs() < 1e-6);
    }

    #[test]
    fn top_lists_hand_checked_with_ties_broken_by_id() {
        // Ids 1 and 3 are the same vector: equal scores for query 0, lower id first.
        let v = [1.0, 0.0, 0.6, 0.8, 0.0, 1.0, 0.6, 0.8];
        let lists = top_lists(&v, 2, &[3, 1, 2, 3], &|_| {});
        let ids = |q: usize| lists[q].iter().map(|c| c.1).collect::<Vec<_>>();
        assert_eq!(ids(0), [1, 3, 2]);
        assert_eq!(ids(1), [3]); // cos 1.0 with its twin
        assert_eq!(ids(2), [1, 3]); // 0.8, 0.8 then 0.0
        assert_eq!(ids(3), [1, 2, 0]); // its twin 1.0, then 0.8, then 0.6
    }

    #[test]
    fn a_candidate_buffer_never_grows_past_its_capacity() {
        // Rising scores beat every floor: the worst case for a buffer that only grows.
        let mut c = Candidates::new(10);
        let cap = c.buf.capacity();
        assert_eq!(Candidates::capacity(10), 26); // 10 + max(10, 16)
        for block in 0..100u32 {
            let scores: Vec<f32> = (0..100).map(|j| (block * 100 + j) as f32).collect();
            c.offer(&scores, block * 100, Some(5));
            assert!(c.buf.len() <= 26, "{} candidates held", c.buf.len());
        }
        assert_eq!(c.buf.capacity(), cap, "never reallocated");
        let top = c.finish();
        let ids: Vec<u32> = top.iter().map(|t| t.1).collect();
        assert_eq!(ids, (9990..10_000).rev().collect::<Vec<u32>>());
        assert_eq!(top.capacity(), 10);
    }

    #[test]
    fn a_sample_of_queries_gets_the_same_lists_as_the_full_ranking() {
        // Queries spread over 2 candidate blocks and a remainder, in more than one query
        // block; a query's own row never appears in its list.
        let (n, dim) = (BLOCK + 300, 16);
        let v = random_unit(n, dim, 3);
        let queries: Vec<usize> = (0..n).step_by(7).collect();
        let keep: Vec<usize> = queries.iter().map(|q| 1 + q % 13).collect();
        assert!(queries.len() > QUERY_BLOCK);
        let sample = top_lists_of(&v, dim, &queries, &keep, &|_| {});
        let all_keep: Vec<usize> = (0..n).map(|q| 1 + q % 13).collect();
        let full = top_lists(&v, dim, &all_keep, &|_| {});
        assert_eq!(sample.len(), queries.len());
        for (j, &q) in queries.iter().enumerate() {
            assert_eq!(sample[j].len(), keep[j], "query {q}");
            assert!(sample[j].iter().all(|c| c.1 as usize != q), "query {q} lists itself");
            for (a, b) in sample[j].iter().zip(&full[q]) {
                assert!((a.0 - b.0).abs() < 1e-5, "query {q}: {:?} vs {:?}", sample[j], full[q]);
            }
        }
        // Hand-checked: the 4 points of the ties test, queries 3 and 0 only.
        let v = [1.0, 0.0, 0.6, 0.8, 0.0, 1.0, 0.6, 0.8];
        let lists = top_lists_of(&v, 2, &[3, 0], &[3, 2], &|_| {});
        let ids = |j: usize| lists[j].iter().map(|c| c.1).collect::<Vec<_>>();
        assert_eq!(ids(0), [1, 2, 0]);
        assert_eq!(ids(1), [1, 3]);
    }

    #[test]
    fn top_lists_match_a_brute_force_ranking_across_block_boundaries() {
        // 2 blocks and a remainder: every pair kind (diagonal, off-diagonal) is exercised.
        let (n, dim) = (2 * BLOCK + 37, 24);
        let v = random_unit(n, dim, 9);
        let keep: Vec<usize> = (0..n).map(|q| 1 + q % 17).collect();
        let lists = top_lists(&v, dim, &keep, &|_| {});
        let rows: Vec<&[f32]> = v.chunks(dim).collect();
        for q in (0..n).step_by(97).chain([0, BLOCK - 1, BLOCK, n - 1]) {
            let want: Vec<u32> =
                exact_ranking(&rows, q).iter().take(keep[q]).map(|h| h.0).collect();
            let got: Vec<u32> = lists[q].iter().map(|c| c.1).collect();
            // Matrix-product and sequential sums may differ in the last bit: compare scores.
            assert_eq!(got.len(), want.len(), "query {q}");
            for (g, w) in got.iter().zip(&want) {
                let dot =
                    |d: u32| rows[q].iter().zip(rows[d as usize]).map(|(a, b)| a * b).sum::<f32>();
                assert!((dot(*g) - dot(*w)).abs() < 1e-5, "query {q}: {got:?} vs {want:?}");
            }
        }
    }
}
