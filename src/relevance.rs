//! Caption-overlap relevance between two images: how far their human captions describe the
//! same things. Pure; documented with a worked example in docs/metrics.md.
//!
//! `tfidf` (default): captions are lowercased, split into words, stop words dropped, words
//! stemmed (Porter2). An image's weight for a term is the share of its annotators who used it
//! times the term's IDF over the dataset, `ln(N / df)`; rel(q, d) is the cosine of the two
//! weight vectors, in [0, 1]. `jaccard`: |A ∩ B| / |A ∪ B| of the stemmed term sets.
//! `semantic`: each caption embedded by a sentence encoder (all-MiniLM-L6-v2), an image's vector
//! the unit mean of its captions' vectors, centred on the dataset ([`centre`]), rel(q, d) their
//! cosine clamped to [0, 1]. `hybrid`:
//! the even mix ½ tf-idf + ½ semantic. The caption vectors come from the engine
//! ([`Semantic`]); this module only combines them.

use std::collections::HashMap;

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};

/// The relevance methods embtui implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Cosine of the images' tf-idf weighted caption terms (annotator agreement × rarity).
    Tfidf,
    /// Shared stemmed caption terms over all terms of the two images.
    Jaccard,
    /// Cosine of the images' mean caption embeddings (all-MiniLM-L6-v2).
    Semantic,
    /// ½ tf-idf + ½ semantic.
    Hybrid,
}

impl Method {
    /// True when the method needs caption embeddings.
    pub fn needs_semantic(self) -> bool {
        matches!(self, Self::Semantic | Self::Hybrid)
    }

    /// The threshold τ `eval` uses with this method unless told otherwise (docs/metrics.md:
    /// calibrated on CxC's human ratings with `embtui validate`).
    pub fn default_threshold(self) -> f32 {
        match self {
            Self::Tfidf | Self::Jaccard => 0.3,
            Self::Semantic => 0.58,
            Self::Hybrid => 0.46,
        }
    }

    /// How the semantic part was computed, as reports record it (`relevance.semantic`), or ""
    /// for the lexical methods: `--check` refuses a baseline whose semantic part differs.
    pub fn semantic_version(self) -> &'static str {
        if self.needs_semantic() {
            SEMANTIC_VERSION
        } else {
            ""
        }
    }

    /// Every method, in the order reports list them.
    pub const ALL: [Method; 4] = [Self::Tfidf, Self::Jaccard, Self::Semantic, Self::Hybrid];
}

/// Per image, the unit mean of its captions' sentence embeddings: `n × dim`, row-major.
#[derive(Debug, Clone)]
pub struct Semantic {
    pub dim: usize,
    pub vectors: Vec<f32>,
}

impl Semantic {
    fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// Cosine of images a and b (their rows are unit vectors), summed in 8 lanes.
    fn cos(&self, a: usize, b: usize) -> f32 {
        let (x, y) = (self.row(a), self.row(b));
        let mut lanes = [0f32; 8];
        for (cx, cy) in x.chunks(8).zip(y.chunks(8)) {
            for ((l, a), b) in lanes.iter_mut().zip(cx).zip(cy) {
                *l += a * b;
            }
        }
        lanes.iter().sum()
    }
}

/// What `semantic` is in this version; reports before it had no such field (uncentred).
pub const SEMANTIC_VERSION: &str = "all-MiniLM-L6-v2 unit caption means, centred on the dataset";

/// Datasets with at least this many captioned images have their semantic vectors centred.
pub const CENTRE_MIN_IMAGES: usize = 100;

/// Centres unit image vectors (`dim` per row) on their dataset: subtracts the mean of the rows
/// and makes each row unit length again. Sentence embeddings share a common direction (any two
/// captions of photos have a cosine around 0.15), which compresses the scale that relevance
/// is read on; removing the mean is the standard correction (Mu & Viswanath 2018, "all-but-
/// the-top", its first step) and has no parameter. Rows that are all zero (images without
/// captions) neither count nor change. With fewer than `min_images` non-zero rows the mean is
/// too noisy to remove: nothing changes. Returns whether the rows were centred.
pub fn centre(vectors: &mut [f32], dim: usize, min_images: usize) -> bool {
    let live = |row: &[f32]| row.iter().any(|&x| x != 0.0);
    let n = vectors.chunks(dim).filter(|r| live(r)).count();
    if n < min_images.max(1) {
        return false;
    }
    let mut mean = vec![0f64; dim];
    for row in vectors.chunks(dim).filter(|r| live(r)) {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += f64::from(x));
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    for row in vectors.chunks_mut(dim).filter(|r| live(r)) {
        row.iter_mut().zip(&mean).for_each(|(x, &m)| *x = (f64::from(*x) - m) as f32);
        let norm = row.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x = (f64::from(*x) / norm) as f32);
        }
    }
    true
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tfidf => "tfidf",
            Self::Jaccard => "jaccard",
            Self::Semantic => "semantic",
            Self::Hybrid => "hybrid",
        })
    }
}

/// English stop words: function words that say nothing about what a photo shows.
const STOP: &[&str] = &[
    "a",
    "an",
    "the",
    "and",
    "or",
    "but",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "with",
    "by",
    "from",
    "up",
    "down",
    "into",
    "onto",
    "over",
    "under",
    "out",
    "off",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "has",
    "have",
    "had",
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "their",
    "they",
    "them",
    "he",
    "she",
    "his",
    "her",
    "him",
    "as",
    "while",
    "who",
    "which",
    "what",
    "some",
    "one",
    "two",
    "three",
    "other",
    "another",
    "each",
    "very",
    "near",
    "next",
    "front",
    "behind",
    "through",
    "around",
    "something",
    "someone",
    "s",
    "i",
    "we",
    "you",
    "our",
    "your",
    "not",
    "no",
    "does",
    "do",
    "can",
    "will",
    "just",
    "so",
    "than",
    "then",
    "too",
    "about",
    "above",
    "across",
    "along",
    "against",
    "among",
    "between",
    "during",
];

/// Splits a caption into stemmed content terms.
pub fn terms(caption: &str, stemmer: &Stemmer) -> Vec<String> {
    words(caption).into_iter().map(|w| stemmer.stem(&w).into_owned()).collect()
}

/// The lower-cased content words of a caption, stop words dropped, before stemming.
pub fn words(caption: &str) -> Vec<String> {
    caption
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP.contains(w))
        .map(str::to_owned)
        .collect()
}

/// Sparse, L2-normalised term weights per image and an inverted index over them.
pub struct Relevance {
    pub method: Method,
    vectors: Vec<Vec<(u32, f32)>>,
    postings: Vec<Vec<(u32, f32)>>,
    /// Per term id: the first word seen that stems to it (shown instead of the stem).
    surface: Vec<String>,
    /// Caption embeddings, for `semantic` and `hybrid`.
    semantic: Option<Semantic>,
}

impl Relevance {
    /// Builds the index for images given as lists of captions, in id order, for a lexical
    /// method (tf-idf or Jaccard).
    ///
    /// # Panics
    /// When `method` needs caption embeddings: use [`Relevance::with_semantic`].
    pub fn new(method: Method, captions: &[Vec<String>]) -> Self {
        assert!(!method.needs_semantic(), "{method} relevance needs caption embeddings");
        Self::lexical(method, captions)
    }

    /// Builds `semantic` or `hybrid` relevance (or a lexical one, ignoring `semantic`) from the
    /// captions and their images' mean caption embeddings (`semantic.vectors` has one unit row
    /// per image, in id order).
    ///
    /// # Panics
    /// When `semantic` does not hold one row per image.
    pub fn with_semantic(method: Method, captions: &[Vec<String>], semantic: Semantic) -> Self {
        assert_eq!(semantic.vectors.len(), captions.len() * semantic.dim, "one row per image");
        let mut r = Self::lexical(method, captions);
        if method.needs_semantic() {
            r.semantic = Some(semantic);
        }
        r
    }

    fn lexical(method: Method, captions: &[Vec<String>]) -> Self {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut surface: Vec<String> = Vec::new();
        // Per image: term → number of annotators (captions) that used it.
        let counts: Vec<HashMap<u32, u32>> = captions
            .iter()
            .map(|caps| {
                let mut m: HashMap<u32, u32> = HashMap::new();
                for c in caps {
                    let mut seen: Vec<(String, String)> =
                        words(c).into_iter().map(|w| (stemmer.stem(&w).into_owned(), w)).collect();
                    seen.sort();
                    seen.dedup_by(|a, b| a.0 == b.0);
                    for (t, w) in seen {
                        let id = *vocab.entry(t).or_insert_with(|| {
                            surface.push(w);
                            (surface.len() - 1) as u32
                        });
                        *m.entry(id).or_default() += 1;
                    }
                }
                m
            })
            .collect();
        let n = captions.len() as f32;
        let mut df = vec![0u32; surface.len()];
        counts.iter().flat_map(|m| m.keys()).for_each(|&t| df[t as usize] += 1);
        let vectors: Vec<Vec<(u32, f32)>> = counts
            .iter()
            .zip(captions)
            .map(|(m, caps)| {
                let mut v: Vec<(u32, f32)> = m
                    .iter()
                    .map(|(&t, &c)| {
                        let w = if method == Method::Jaccard {
                            1.0
                        } else {
                            c as f32 / caps.len().max(1) as f32 * (n / df[t as usize] as f32).ln()
                        };
                        (t, w)
                    })
                    .filter(|&(_, w)| w > 0.0)
                    .collect();
                v.sort_by_key(|&(t, _)| t);
                if method != Method::Jaccard {
                    let norm = v.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
                    v.iter_mut().for_each(|(_, w)| *w /= norm.max(f32::MIN_POSITIVE));
                }
                v
            })
            .collect();
        let mut postings = vec![Vec::new(); surface.len()];
        for (img, v) in vectors.iter().enumerate() {
            for &(t, w) in v {
                postings[t as usize].push((img as u32, w));
            }
        }
        Self { method, vectors, postings, surface, semantic: None }
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// rel(q, d) for every image d (rel(q, q) included), in id order.
    pub fn row(&self, q: usize) -> Vec<f32> {
        let mut acc = vec![0f32; self.vectors.len()];
        self.row_into(q, &mut acc);
        acc
    }

    /// [`Relevance::row`] into a buffer the caller reuses (`acc.len()` = number of images).
    pub fn row_into(&self, q: usize, acc: &mut [f32]) {
        self.lexical_row_into(q, acc);
        if let Some(sem) = &self.semantic {
            let lex = if self.method == Method::Hybrid { 0.5 } else { 0.0 };
            let w = 1.0 - lex;
            for (d, a) in acc.iter_mut().enumerate() {
                *a = lex * *a + w * sem.cos(q, d);
            }
        }
        acc.iter_mut().for_each(|a| *a = a.clamp(0.0, 1.0));
    }

    /// Rows `q0 .. q0 + out.len() / n` at once, row-major into `out`: the same values as
    /// [`Relevance::row_into`] up to float rounding (the semantic part is one matrix product,
    /// summed in another order), for passes over every query.
    pub fn rows_into(&self, q0: usize, out: &mut [f32]) {
        let ids: Vec<usize> = (q0..q0 + out.len() / self.len().max(1)).collect();
        self.rows_of(&ids, out);
    }

    /// Rows `ids[0], ids[1], …` at once, row-major into `out` (`ids.len() × n`): as
    /// [`Relevance::rows_into`] for any set of queries (a sample).
    pub fn rows_of(&self, ids: &[usize], out: &mut [f32]) {
        let n = self.len();
        let count = ids.len();
        debug_assert_eq!(out.len(), count * n);
        let Some(sem) = &self.semantic else {
            for (&q, row) in ids.iter().zip(out.chunks_mut(n)) {
                self.row_into(q, row);
            }
            return;
        };
        let hybrid = self.method == Method::Hybrid;
        if hybrid {
            for (&q, row) in ids.iter().zip(out.chunks_mut(n)) {
                self.lexical_row_into(q, row);
                row.iter_mut().for_each(|a| *a *= 0.5);
            }
        }
        let mut gathered = Vec::with_capacity(count * sem.dim);
        for &q in ids {
            gathered.extend_from_slice(sem.row(q));
        }
        let queries = faer::MatRef::from_row_major_slice(&gathered, count, sem.dim);
        let all = faer::MatRef::from_row_major_slice(&sem.vectors, n, sem.dim);
        let (accum, weight) =
            if hybrid { (faer::Accum::Add, 0.5) } else { (faer::Accum::Replace, 1.0) };
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(out, count, n),
            accum,
            queries,
            all.transpose(),
            weight,
            faer::Par::Seq,
        );
        out.iter_mut().for_each(|a| *a = a.clamp(0.0, 1.0));
    }

    /// The lexical (tf-idf or Jaccard) part of a row, unclamped.
    fn lexical_row_into(&self, q: usize, acc: &mut [f32]) {
        acc.fill(0.0);
        for &(t, w) in &self.vectors[q] {
            for &(d, wd) in &self.postings[t as usize] {
                acc[d as usize] += w * wd;
            }
        }
        if self.method == Method::Jaccard {
            let nq = self.vectors[q].len() as f32;
            for (d, a) in acc.iter_mut().enumerate() {
                let union = nq + self.vectors[d].len() as f32 - *a;
                *a = if union > 0.0 { *a / union } else { 0.0 };
            }
        }
    }

    /// rel between two images: the same value as `row(a)[b]` (the same products, summed in
    /// the same order), in O(terms) instead of O(images).
    pub fn pair(&self, a: usize, b: usize) -> f32 {
        let mut acc = self.lexical_pair(a, b);
        if let Some(sem) = &self.semantic {
            let lex = if self.method == Method::Hybrid { 0.5 } else { 0.0 };
            acc = lex * acc + (1.0 - lex) * sem.cos(a, b);
        }
        acc.clamp(0.0, 1.0)
    }

    /// The lexical part of a pair's relevance, unclamped.
    fn lexical_pair(&self, a: usize, b: usize) -> f32 {
        let (va, vb) = (&self.vectors[a], &self.vectors[b]);
        let (mut i, mut j, mut acc) = (0, 0, 0f32);
        while i < va.len() && j < vb.len() {
            match va[i].0.cmp(&vb[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    acc += va[i].1 * vb[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        if self.method == Method::Jaccard {
            let union = va.len() as f32 + vb.len() as f32 - acc;
            acc = if union > 0.0 { acc / union } else { 0.0 };
        }
        acc
    }

    /// The terms and weights of one image, heaviest first (for explanations). Terms are
    /// shown as the first caption word that stems to them.
    pub fn top_terms(&self, img: usize, n: usize) -> Vec<(String, f32)> {
        let mut v: Vec<(String, f32)> =
            self.vectors[img].iter().map(|&(t, w)| (self.surface[t as usize].clone(), w)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// The terms two images share and what each adds to their relevance (tf-idf: the product
    /// of the two weights; Jaccard: 1 / |union|), largest first.
    pub fn shared_terms(&self, a: usize, b: usize) -> Vec<(String, f32)> {
        let (va, vb) = (&self.vectors[a], &self.vectors[b]);
        let union = (va.len() + vb.len()) as f32;
        let mut shared: Vec<(String, f32)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < va.len() && j < vb.len() {
            match va[i].0.cmp(&vb[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    let w = if self.method == Method::Jaccard { 1.0 } else { va[i].1 * vb[j].1 };
                    shared.push((self.surface[va[i].0 as usize].clone(), w));
                    i += 1;
                    j += 1;
                }
            }
        }
        if self.method == Method::Jaccard {
            let u = union - shared.len() as f32;
            shared.iter_mut().for_each(|(_, w)| *w /= u.max(1.0));
        }
        shared.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter().map(|c| c.iter().map(|s| (*s).to_owned()).collect()).collect()
    }

    #[test]
    fn terms_are_stemmed_without_stop_words() {
        let s = Stemmer::create(Algorithm::English);
        assert_eq!(terms("Two dogs are running in the snow.", &s), ["dog", "run", "snow"]);
    }

    #[test]
    fn tfidf_hand_checked_on_three_images() {
        // Image 0: {dog, snow}; 1: {dog, grass}; 2: {car}. N = 3.
        // idf(dog) = ln(3/2) = 0.405, idf(snow) = idf(grass) = ln 3 = 1.099.
        // cos(0, 1) = 0.405² / (0.405² + 1.099²) = 0.164 / 1.371 = 0.120.
        let r = Relevance::new(
            Method::Tfidf,
            &caps(&[&["a dog in snow"], &["a dog on grass"], &["a car"]]),
        );
        assert!((r.pair(0, 1) - 0.1198).abs() < 1e-3, "{}", r.pair(0, 1));
        assert_eq!(r.pair(0, 2), 0.0);
        assert!((r.pair(0, 0) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn pair_equals_the_row_value_bit_for_bit() {
        let c = caps(&[
            &["a dog in snow", "dogs in the snow"],
            &["a dog on grass"],
            &["snow and a car"],
            &["a car"],
        ]);
        for m in [Method::Tfidf, Method::Jaccard] {
            let r = Relevance::new(m, &c);
            for a in 0..4 {
                let row = r.row(a);
                for (b, &want) in row.iter().enumerate() {
                    assert_eq!(r.pair(a, b).to_bits(), want.to_bits(), "{m} {a} {b}");
                }
            }
        }
    }

    #[test]
    fn annotator_agreement_weighs_terms() {
        // Both captions of image 0 say dog, one says ball: dog weighs twice ball.
        let r = Relevance::new(Method::Tfidf, &caps(&[&["dog", "dog ball"], &["cat"], &["tree"]]));
        let t = r.top_terms(0, 2);
        assert_eq!(t[0].0, "dog");
        assert!((t[0].1 / t[1].1 - 2.0).abs() < 1e-4);
    }

    #[test]
    fn shared_terms_sum_to_the_relevance_and_show_words_not_stems() {
        let r = Relevance::new(
            Method::Tfidf,
            &caps(&[&["a dog in snow"], &["dogs running in snow"], &["a car"]]),
        );
        let shared = r.shared_terms(0, 1);
        let names: Vec<&str> = shared.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"dog") && names.contains(&"snow"), "{names:?}");
        let sum: f32 = shared.iter().map(|s| s.1).sum();
        assert!((sum - r.pair(0, 1)).abs() < 1e-5);
        let j = Relevance::new(
            Method::Jaccard,
            &caps(&[&["dog running in snow"], &["dog jumps in snow"]]),
        );
        let sum: f32 = j.shared_terms(0, 1).iter().map(|s| s.1).sum();
        assert!((sum - j.pair(0, 1)).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn jaccard_hand_checked() {
        // {dog, run, snow} vs {dog, snow, jump}: 2 shared of 4 → 0.5
        let r = Relevance::new(
            Method::Jaccard,
            &caps(&[&["dog running in snow"], &["dog jumps in snow"]]),
        );
        assert!((r.pair(0, 1) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn semantic_and_hybrid_hand_checked() {
        // Same three images as tfidf_hand_checked_on_three_images, with 2-d caption vectors:
        // image 0 → (1, 0), image 1 → (0.6, 0.8), image 2 → (−1, 0) (opposite: clamped to 0).
        let c = caps(&[&["a dog in snow"], &["a dog on grass"], &["a car"]]);
        let sem = Semantic { dim: 2, vectors: vec![1.0, 0.0, 0.6, 0.8, -1.0, 0.0] };
        let s = Relevance::with_semantic(Method::Semantic, &c, sem.clone());
        assert!((s.pair(0, 1) - 0.6).abs() < 1e-6);
        assert_eq!(s.pair(0, 2), 0.0);
        // Hybrid: ½ · 0.1198 + ½ · 0.6 = 0.3599; with image 2: ½ · 0 + ½ · max(−1, 0) → 0.
        let h = Relevance::with_semantic(Method::Hybrid, &c, sem);
        assert!((h.pair(0, 1) - 0.3599).abs() < 1e-3, "{}", h.pair(0, 1));
        assert_eq!(h.pair(0, 2), 0.0);
        assert_eq!(h.pair(1, 2), 0.0);
    }

    #[test]
    fn centring_removes_the_mean_and_keeps_empty_rows() {
        // (1, 0), (0, 1) and an image without captions: the mean (0.5, 0.5) goes, the rows
        // become (0.707, −0.707) and (−0.707, 0.707) (cosine −1, relevance 0), zeros stay.
        let mut v = vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        assert!(!centre(&mut v.clone(), 2, 3), "2 captioned images are below a minimum of 3");
        assert!(centre(&mut v, 2, 2));
        let h = std::f32::consts::FRAC_1_SQRT_2;
        for (got, want) in v.iter().zip([h, -h, -h, h, 0.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{v:?}");
        }
        let c = caps(&[&["a"], &["b"], &[]]);
        let s = Relevance::with_semantic(Method::Semantic, &c, Semantic { dim: 2, vectors: v });
        assert_eq!((s.pair(0, 1), s.pair(0, 2)), (0.0, 0.0));
        // Three rows (1, 0), (0.6, 0.8), (0, 1): mean (0.533, 0.6); minus the mean
        // (0.467, −0.6), (0.067, 0.2), (−0.533, 0.4); unit (0.614, −0.789), (0.316, 0.949),
        // (−0.8, 0.6). Rows 1 and 2 had cosine 0.8, now −0.253 + 0.569 = 0.316.
        let mut w = vec![1.0, 0.0, 0.6, 0.8, 0.0, 1.0];
        assert!(centre(&mut w, 2, 1));
        let want = [0.614, -0.789, 0.316, 0.949, -0.8, 0.6];
        assert!(w.iter().zip(want).all(|(g, e)| (g - e).abs() < 1e-3), "{w:?}");
        let cos = |a: usize, b: usize| w[2 * a] * w[2 * b] + w[2 * a + 1] * w[2 * b + 1];
        assert!((cos(1, 2) - 0.316).abs() < 1e-3, "{w:?}");
    }

    #[test]
    fn rows_at_once_match_rows_one_by_one_for_every_method() {
        let c = caps(&[
            &["a dog in snow", "dogs in the snow"],
            &["a dog on grass"],
            &["snow and a car"],
            &["a car"],
            &["a red car on grass"],
        ]);
        let mut rng = crate::rng::SplitMix64(5);
        let dim = 24;
        let mut v: Vec<f32> = (0..5 * dim).map(|_| rng.unit() as f32 - 0.3).collect();
        for row in v.chunks_mut(dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= n);
        }
        for m in Method::ALL {
            let r = Relevance::with_semantic(m, &c, Semantic { dim, vectors: v.clone() });
            let mut scattered = vec![0f32; 2 * 5];
            r.rows_of(&[4, 0], &mut scattered);
            for (got, q) in scattered.chunks(5).zip([4, 0]) {
                for (g, w) in got.iter().zip(r.row(q)) {
                    assert!((g - w).abs() < 1e-5, "{m} row {q}: {g} vs {w}");
                }
            }
            let mut block = vec![0f32; 3 * 5];
            r.rows_into(1, &mut block);
            for (i, got) in block.chunks(5).enumerate() {
                let want = r.row(1 + i);
                for (d, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() < 1e-5, "{m} row {} col {d}: {g} vs {w}", 1 + i);
                    assert!((r.pair(1 + i, d) - w).abs() < 1e-6, "{m} pair vs row");
                }
            }
        }
    }
}
