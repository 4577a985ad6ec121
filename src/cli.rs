//! Command-line types (clap derive) only: one `Args` struct per subcommand, ranges checked by
//! `value_parser`s so that nothing downstream sees an out-of-range value. `config.rs` resolves
//! what needs the file system.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::dataset::Format;
use crate::hash::ShardSpec;
use crate::model::{CudnnSearch, Device};
use crate::relevance::Method;

/// Images per inference batch when `--batch` is not given (one place for every command).
pub const DEFAULT_BATCH: usize = 16;
/// Neighbours a search returns when `-k` is not given.
pub const DEFAULT_SEARCH_K: usize = 5;

const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 regression found by --check, or nothing found; 2 usage or data error.
Environment: ORT_DYLIB_PATH (ONNX Runtime library), EMBTUI_MODELS (models folder),
EMBTUI_STORE (vector store), NO_COLOR (no colours), COLUMNS (table width).";

/// Which vision embedding model to trust for image similarity search, and why.
#[derive(Debug, Parser)]
#[command(name = "embtui", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: Global,
}

/// Flags every subcommand takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Folder holding the ONNX files (default: ./models beside the checkout, or $EMBTUI_MODELS).
    #[arg(long, global = true, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Extra model manifest(s) adding or overriding zoo entries (see onnx/models.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub manifest: Vec<PathBuf>,
    /// Vector store (LMDB folder; default: ~/.cache/embtui/store or $EMBTUI_STORE).
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Execution provider: auto (CUDA if it works, else CPU), cpu, cuda or cuda:K for GPU K.
    #[arg(long, global = true, default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// 0: on a CPU, one single-threaded ONNX Runtime session per core, each decoding and
    /// running its own batches (fastest); N: one session with N intra-op threads fed by decoder
    /// threads (more than 4 per core are capped). CUDA always uses one session.
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Refuse images with more pixels than this many millions (Pillow's default is 179).
    #[arg(long, global = true, default_value_t = 179, value_name = "MP", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_megapixels: u64,
    /// Embed truncated JPEGs anyway (the missing part is grey); they are counted in reports.
    #[arg(long, global = true)]
    pub accept_truncated: bool,
    /// fast: JPEGs at least twice the model's input are decoded at 1/2-1/8 scale (DCT
    /// scaling, as Pillow's draft), then resampled exactly; exact: always decode full size
    /// (and never reuse a stored vector of a reduced-scale decode).
    #[arg(long, global = true, value_enum, default_value_t = DecodeMode::Fast)]
    pub decode: DecodeMode,
    /// fp16: use each model's fp16 copy NAME-fp16 (made once by `just fp16 NAME` or `just
    /// export-hf NAME --precision fp16`, its parity in models.lock.json; meant for CUDA).
    #[arg(long, global = true, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,
    /// cuDNN convolution algorithm search on CUDA: heuristic starts at once (right for short
    /// runs); exhaustive times every algorithm on the first batch of each shape (ONNX
    /// Runtime's own default; can pay off on long runs).
    #[arg(long, global = true, value_enum, default_value_t = CudnnSearch::Heuristic)]
    pub cudnn_search: CudnnSearch,
}

/// Which copy of each model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    Fp32,
    Fp16,
}

/// How large JPEGs are decoded (docs/performance.md "Large photos").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecodeMode {
    Fast,
    Exact,
}

/// Which images of a dataset to use.
#[derive(Debug, Args, Clone)]
pub struct DatasetArgs {
    /// Dataset folder (Flickr30k, Flickr8k, COCO or a plain image folder).
    #[arg(long, value_name = "DIR")]
    pub dataset: PathBuf,
    /// Force a caption layout instead of detecting it.
    #[arg(long = "layout", value_enum, value_name = "LAYOUT")]
    pub format: Option<Format>,
    /// Keep only this split (Karpathy JSON, Hugging Face CSV, Flickr8k lists), e.g. `test`.
    #[arg(long)]
    pub split: Option<String>,
    /// Keep the first N images (sorted by name).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Keep N images chosen at random with --seed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Seed for --sample and --queries.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// One or more models of the zoo.
#[derive(Debug, Args, Clone)]
pub struct ModelsArg {
    /// Models, comma-separated (`embtui models` lists them).
    #[arg(long = "model", value_delimiter = ',', required = true, value_name = "NAME,…")]
    pub names: Vec<String>,
}

/// Exactly one model of the zoo.
#[derive(Debug, Args, Clone)]
pub struct ModelArg {
    /// The model (`embtui models` lists them).
    #[arg(long = "model", value_name = "NAME")]
    pub name: String,
}

/// Inference batch size.
#[derive(Debug, Args, Clone, Copy)]
pub struct BatchArg {
    /// Images per inference batch (1-1024).
    #[arg(long = "batch", default_value_t = DEFAULT_BATCH, value_parser = parse_batch)]
    pub size: usize,
}

/// How relevance and metrics are computed.
#[derive(Debug, Args, Clone)]
pub struct MetricArgs {
    /// Cut-offs for the @k metrics, comma-separated, each at least 1.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 5, 10], value_parser = parse_k)]
    pub k: Vec<usize>,
    /// How two images' captions are compared (docs/metrics.md; hybrid agrees best with
    /// people: `embtui validate`).
    #[arg(long, value_enum, default_value_t = Method::Hybrid)]
    pub relevance: Method,
    /// Relevance threshold τ in [0, 1] for p@k, map@r and mrr [default: the method's
    /// calibrated τ: 0.46 for hybrid, 0.58 for semantic, 0.3 for tfidf and jaccard].
    #[arg(long, value_parser = parse_unit)]
    pub threshold: Option<f32>,
    /// Bootstrap resamples for the 95% confidence intervals (at least 100).
    #[arg(long, default_value_t = 1000, value_parser = parse_bootstrap)]
    pub bootstrap: usize,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed a dataset with one or more models into the vector store (resumable, cached).
    #[command(
        after_help = "Examples:\n  embtui index --dataset ~/flickr30k --model efficientnet-lite0,dinov2-s14-imgfocus\n  embtui index --dataset ~/coco --model open-nsfw --device cpu --batch 32\n  embtui index --dataset ~/flickr30k --model efficientnet-lite0 --device cuda:1 --shard 1/4 --store shard1"
    )]
    Index(IndexArgs),
    /// Index what is missing, then score each model with caption-overlap retrieval metrics.
    #[command(
        after_help = "Examples:\n  embtui eval --dataset ~/flickr30k --model efficientnet-lite0,open-nsfw\n  embtui eval --dataset D --model M --json --out report.json\n  embtui eval --dataset D --model M --check eval/baseline.json --tolerance 0.01\n  embtui eval --dataset D --model M1,M2 --format md >> README.md\n  embtui eval --dataset D --model M1,M2 --per-query --out eval.json --html report.html"
    )]
    Eval(EvalArgs),
    /// The article's figure: per query its photo and caption, then each model's top-k
    /// neighbours framed by caption relevance, as a PNG (or SVG) contact sheet.
    #[command(
        after_help = "Examples:\n  embtui figure --dataset ~/flickr30k --model efficientnet-lite0,dinov2-s14-imgfocus --out fig.png\n  embtui figure --dataset D --model M1,M2 --queries 1000268201_693b08cb0e.jpg,1001773457_577c3a7d70.jpg --out fig.svg\n  embtui figure --dataset D --model M1,M2,M3 --pick random:4 -k 3 --out fig.png --json"
    )]
    Figure(FigureArgs),
    /// One self-contained HTML report from a saved evaluation (thumbnails embedded, works
    /// offline, prints well).
    #[command(
        after_help = "Examples:\n  embtui eval --dataset ~/flickr30k --model M1,M2 --per-query --json --out eval.json\n  embtui report --from eval.json --out report.html\n  embtui report --from eval.json --dataset /moved/flickr30k --gallery 12 --out report.html"
    )]
    Report(ReportArgs),
    /// The k nearest dataset images to any image file (or to a text, for CLIP/SigLIP).
    #[command(
        after_help = "Examples:\n  embtui search photo.jpg --dataset ~/flickr30k --model dinov2-s14-imgfocus -k 5 --show\n  embtui search --text \"a dog in the snow\" --dataset ~/flickr30k --model clip-vit-b32"
    )]
    Search(SearchArgs),
    /// The text-tower embedding of each TEXT (token ids and vector; all of it with --json).
    #[command(
        after_help = "Examples:\n  embtui text-embed --model clip-vit-b32 \"a dog in the snow\" \"a red car\""
    )]
    TextEmbed(TextEmbedArgs),
    /// Write a dataset's embeddings as FILE.npy (float32 [N, dim]) and FILE.ids.txt.
    #[command(
        after_help = "Examples:\n  embtui export --dataset ~/flickr8k --model efficientnet-lite0 --out lite0.npy\n  embtui export --dataset D --model efficientnet-lite0 --out l0.npy --logits"
    )]
    Export(ExportArgs),
    /// Compare models side by side in the terminal, with inline thumbnails (works over SSH).
    #[command(
        after_help = "Examples:\n  embtui browse --dataset ~/flickr30k --model efficientnet-lite0,dinov2-s14-imgfocus\n  embtui browse --dataset D --model M --image-protocol halfblocks   # plain SSH, tmux\n\nInside tmux, kitty/sixel images need `set -g allow-passthrough on`; halfblocks always work."
    )]
    Browse(BrowseArgs),
    /// The model zoo: what is installed and verified, dims, licences; `pull` and `show` Hugging
    /// Face Hub repos that publish ONNX.
    #[command(
        after_help = "Examples:\n  embtui models\n  embtui models --json | jq '.[] | select(.installed)'\n  embtui models pull Xenova/clip-vit-base-patch32\n  embtui models pull Xenova/dinov2-base --variant fp16\n  embtui models show Xenova/clip-vit-base-patch32\n\nHub: HF_ENDPOINT, HF_HOME / HF_HUB_CACHE (shared with Python's huggingface_hub), HF_TOKEN,\nHF_HUB_OFFLINE=1 (cache only), HF_HUB_DOWNLOAD_TIMEOUT (seconds without data, default 10)."
    )]
    Models(ModelsArgs),
    /// Check ONNX Runtime, CUDA, the models and the store; say how to fix what is wrong.
    #[command(
        after_help = "Examples:\n  embtui doctor\n  embtui doctor --device cuda:1 --store /data/embtui-store"
    )]
    Doctor,
    /// What embtui reads in a dataset: layout, images, captions, splits and every problem found.
    #[command(
        after_help = "Examples:\n  embtui dataset --dataset ~/flickr30k\n  embtui dataset --dataset ~/flickr30k --split test --json"
    )]
    Dataset(DatasetCmdArgs),
    /// Check what caption relevance means on a dataset: same-subject pairs vs unrelated ones,
    /// or explain one pair.
    #[command(
        after_help = "Examples:\n  embtui relevance --dataset ~/flickr30k --subjects dog,snow,bicycle\n  embtui relevance --dataset D --pair 1000268201_693b08cb0e.jpg,1001773457_577c3a7d70.jpg\n  embtui relevance --dataset D --pairs pairs.csv --out scored.csv"
    )]
    Relevance(RelevanceArgs),
    /// How well caption relevance agrees with people: Spearman and Kendall against human
    /// similarity ratings of image pairs, per method, with the threshold each level implies.
    #[command(
        after_help = "Examples:\n  embtui validate --dataset ~/cxc-sis-test --human ~/cxc-sis-test/sis_test.csv\n  embtui validate --dataset ~/coco --human ratings.csv --relevance hybrid --json\n  embtui validate --dataset ~/flickr8k --halves\n\nThe CSV has a header and columns image1,image2,score (CxC's agg_score works); images are\nnamed as in the dataset's caption file and need no pixels."
    )]
    Validate(ValidateArgs),
    /// What the vector store holds (datasets, models, selections, sizes); `gc` removes what is
    /// stale, `merge` combines the stores of shards.
    #[command(
        after_help = "Examples:\n  embtui store\n  embtui store gc --dry-run\n  embtui store gc --compact\n  embtui store --store all merge shard0 shard1 shard2 shard3"
    )]
    Store(StoreArgs),
    /// Measurements behind `just bench` (one line per figure; --json: one object); see
    /// docs/performance.md.
    #[command(
        after_help = "Examples:\n  embtui bench embed --dataset ~/flickr8k --model efficientnet-lite0\n  embtui bench --json search --n 30000 --dim 768"
    )]
    Bench(BenchArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  embtui completions bash > ~/.local/share/bash-completion/completions/embtui\n  embtui completions zsh > ~/.zfunc/_embtui"
    )]
    Completions(CompletionsArgs),
}

/// `embtui index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub models: ModelsArg,
    #[command(flatten)]
    pub batch: BatchArg,
    /// Embed only shard I of N (split by image content hash; run I = 0…N-1 on N machines or
    /// GPUs, then `embtui store merge`). `auto` takes I and N from a Slurm job array
    /// (SLURM_ARRAY_TASK_ID…); `auto/N` from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I/N|auto[/N]", value_parser = parse_shard)]
    pub shard: Option<ShardSpec>,
}

/// `embtui eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub models: ModelsArg,
    #[command(flatten)]
    pub metric: MetricArgs,
    /// Print only the JSON report on stdout (same as --format json).
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// What stdout gets: a table for the terminal, the JSON report, a Markdown leaderboard
    /// (READMEs, pull requests) or tidy CSV (model,metric,mean,ci_low,ci_high).
    #[arg(long = "format", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Add each query's metrics and top-k neighbours per model to the JSON report.
    #[arg(long)]
    pub per_query: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the HTML report to FILE (`embtui report`; per-query results included).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Evaluate N queries drawn with --seed against every image (O(N × images)), or all of
    /// them [default: all up to 50,000 images, a sample of 5,000 above].
    #[arg(long, value_name = "N|all", value_parser = parse_queries)]
    pub queries: Option<QueryCount>,
    /// Compare with a saved report; exit 1 if a metric dropped by more than --tolerance.
    #[arg(long, value_name = "BASELINE")]
    pub check: Option<PathBuf>,
    /// How far (absolute, ≥ 0) a metric may drop below the baseline before --check fails.
    #[arg(long, default_value_t = 0.01, value_parser = parse_tolerance)]
    pub tolerance: f64,
    /// With a per-query baseline, a drop beyond --tolerance fails only when the paired
    /// permutation test makes it significant at this level, in (0, 1).
    #[arg(long, default_value_t = 0.05, value_parser = parse_alpha)]
    pub alpha: f64,
    /// How many of the queries that got worse to list per model (--check).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub worst: usize,
    /// Write the check as JUnit XML (one test case per model × metric) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Append the check as Markdown to FILE (e.g. "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    #[command(flatten)]
    pub batch: BatchArg,
}

/// How many queries to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryCount {
    /// Every evaluated image is a query.
    All,
    /// A seeded sample of this many.
    Sample(usize),
}

/// `--queries`: `all` or a positive number.
pub fn parse_queries(s: &str) -> Result<QueryCount, String> {
    if s == "all" {
        return Ok(QueryCount::All);
    }
    match s.replace(['_', ','], "").parse::<usize>() {
        Ok(0) => Err("0 queries evaluate nothing; give at least 1, or `all`".into()),
        Ok(n) => Ok(QueryCount::Sample(n)),
        Err(_) => Err(format!("`{s}` is neither a number of queries nor `all`")),
    }
}

/// `--alpha`: a significance level strictly between 0 and 1.
fn parse_alpha(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not a significance level; use a value in (0, 1), e.g. 0.05"))
    }
}

/// What `eval` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Md,
    Csv,
}

/// Which queries a figure shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The N queries where the models' per-query nDCG differ most.
    Disagree(usize),
    /// N queries at random (with --seed).
    Random(usize),
}

/// `disagree`, `disagree:N` or `random:N` (N in 1..=100).
fn parse_pick(s: &str) -> Result<Pick, String> {
    let (kind, n) = s.split_once(':').map_or((s, None), |(k, n)| (k, Some(n)));
    let n = match n {
        None => 6,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| format!("{n:?} is not a number of queries from 1 to 100"))?,
    };
    match kind {
        "disagree" => Ok(Pick::Disagree(n)),
        "random" => Ok(Pick::Random(n)),
        _ => Err(format!("{s:?}: use disagree, disagree:N or random:N")),
    }
}

/// `embtui figure`.
#[derive(Debug, Args)]
pub struct FigureArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub models: ModelsArg,
    /// How two images' captions are compared (frames and scores).
    #[arg(long, value_enum, default_value_t = Method::Hybrid)]
    pub relevance: Method,
    /// Relevance threshold τ in [0, 1] (green frames) [default: the method's calibrated τ].
    #[arg(long, value_parser = parse_unit)]
    pub threshold: Option<f32>,
    /// Query images by name, comma-separated (as in the caption file); or N (or `all`): the
    /// queries evaluated before --pick chooses, N drawn with --seed against every image
    /// [default: all up to 50,000 images, a sample of 5,000 above].
    #[arg(long, value_delimiter = ',', value_name = "NAME,…|N|all")]
    pub queries: Vec<String>,
    /// Which queries: where models disagree most, or at random [default: disagree:6].
    #[arg(long, value_parser = parse_pick, value_name = "disagree[:N]|random:N")]
    pub pick: Option<Pick>,
    /// Neighbours per model row (1-10); the row's score is nDCG at this k.
    #[arg(short, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub k: u64,
    /// The file to write: .png, or .svg (an SVG with the thumbnails embedded).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Write SVG whatever --out ends with.
    #[arg(long)]
    pub svg: bool,
    /// Print the layout (size, every tile's place, image and relevance) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub batch: BatchArg,
}

/// `embtui report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A JSON report of `embtui eval --json --out FILE` (with --per-query for the gallery and
    /// the distributions).
    #[arg(long, value_name = "EVAL.json")]
    pub from: PathBuf,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
    /// Where the dataset's photos are now [default: the report's dataset root].
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// How many disagreement queries the gallery shows.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub gallery: u64,
}

/// `embtui search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Query image file.
    #[arg(required_unless_present = "text", conflicts_with = "text")]
    pub image: Option<PathBuf>,
    /// Query by text instead (models with a text tower: CLIP, SigLIP).
    #[arg(long)]
    pub text: Option<String>,
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub model: ModelArg,
    /// Number of neighbours to return (at least 1).
    #[arg(short, default_value_t = DEFAULT_SEARCH_K, value_parser = parse_k)]
    pub k: usize,
    /// Exact search instead of arroy's approximate one.
    #[arg(long)]
    pub exact: bool,
    /// Print the hits as one JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Show the query and neighbours as inline thumbnails (kitty, iTerm, sixel, blocks).
    #[arg(long)]
    pub show: bool,
}

/// `embtui text-embed`.
#[derive(Debug, Args)]
pub struct TextEmbedArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// The texts to embed.
    #[arg(required = true)]
    pub text: Vec<String>,
    /// Print one JSON document (token ids and full vectors) instead of a summary per text.
    #[arg(long)]
    pub json: bool,
}

/// `embtui export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub model: ModelArg,
    /// The .npy file to write (FILE.ids.txt is written beside it).
    #[arg(long, value_name = "FILE.npy")]
    pub out: PathBuf,
    /// Also write the model's class logits (manifest `logits`) as FILE.logits.npy.
    #[arg(long)]
    pub logits: bool,
    #[command(flatten)]
    pub batch: BatchArg,
}

/// How thumbnails reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageProtocol {
    Auto,
    Halfblocks,
    Sixel,
    Kitty,
    Iterm2,
}

/// `embtui browse`.
#[derive(Debug, Args)]
pub struct BrowseArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    #[command(flatten)]
    pub models: ModelsArg,
    /// Terminal graphics protocol for thumbnails (auto detects; halfblocks work everywhere).
    #[arg(long, value_enum, default_value_t = ImageProtocol::Auto)]
    pub image_protocol: ImageProtocol,
    /// Score N queries drawn with --seed (every image can still be browsed and found as a
    /// neighbour), or all [default: all up to 50,000 images, a sample of 5,000 above].
    #[arg(long, value_name = "N|all", value_parser = parse_queries)]
    pub queries: Option<QueryCount>,
}

/// `embtui models [pull|show]`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `embtui models` does besides listing.
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download a Hub repo's ONNX model (and text tower) into the Hub cache, derive its
    /// preprocessing, check it on a test batch and add it to the zoo as ORG/NAME[:VARIANT].
    Pull(PullArgs),
    /// What embtui derives from a Hub repo, field by field, and from which file and field
    /// (pulls it first when needed).
    Show(PullArgs),
}

/// A Hub repo to pull or show.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// ORG/NAME[@REVISION][:VARIANT], e.g. Xenova/clip-vit-base-patch32 or Xenova/dinov2-base@main.
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// Which ONNX file: fp32 (model.onnx) or the SUFFIX of model_SUFFIX.onnx (fp16, quantized, int8, q4, …).
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// Print one JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Commands whose only option is `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `embtui dataset`.
#[derive(Debug, Args)]
pub struct DatasetCmdArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `embtui relevance`.
#[derive(Debug, Args)]
pub struct RelevanceArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Subject words to group photos by (a photo belongs when ≥ 3 captions use the word).
    #[arg(long, value_delimiter = ',', default_values_t = ["dog", "snow", "bicycle", "beach", "ball", "water"].map(String::from))]
    pub subjects: Vec<String>,
    /// Explain the relevance of two images instead: NAME,NAME.
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "A,B")]
    pub pair: Vec<String>,
    /// Score many pairs: a CSV with a header and columns image1,image2 (more columns are
    /// copied through); writes the pairs with one column per method to --out.
    #[arg(long, value_name = "CSV", requires = "out")]
    pub pairs: Option<PathBuf>,
    /// Where --pairs writes its CSV.
    #[arg(long, value_name = "CSV")]
    pub out: Option<PathBuf>,
    /// One relevance method; all of them when omitted.
    #[arg(long, value_enum)]
    pub relevance: Option<Method>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `embtui validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Dataset whose captions describe the rated images (only captions are read).
    #[arg(long, value_name = "DIR")]
    pub dataset: PathBuf,
    /// Force a caption layout instead of detecting it.
    #[arg(long = "layout", value_enum, value_name = "LAYOUT")]
    pub format: Option<Format>,
    /// Human ratings: CSV with a header and columns image1,image2,score (or agg_score).
    #[arg(long, value_name = "CSV", required_unless_present = "halves")]
    pub human: Option<PathBuf>,
    /// No ratings needed: split each image's captions between two groups of annotators (the
    /// first 2 and the rest) and ask how often one group's captions find the other's among
    /// all images (recall@1, recall@10, MRR of the same photo).
    #[arg(long, conflicts_with = "human")]
    pub halves: bool,
    /// One relevance method; all of them when omitted.
    #[arg(long, value_enum)]
    pub relevance: Option<Method>,
    /// Bootstrap resamples (of the first images of the pairs) for the 95% intervals (at
    /// least 100).
    #[arg(long, default_value_t = 1000, value_parser = parse_bootstrap)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `embtui store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub action: Option<StoreAction>,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `embtui store` does besides showing the store.
#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Remove indexes of changed models and of dataset folders that are gone, the vectors of
    /// superseded model files and stat-cache entries of missing files.
    #[command(after_help = "Examples:\n  embtui store gc --dry-run\n  embtui store gc --compact")]
    Gc {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Then rewrite the file without its free pages (needs no other embtui using it).
        #[arg(long)]
        compact: bool,
    },
    /// Copy the vectors and run records of other stores (shards) into this one (--store).
    #[command(after_help = "Examples:\n  embtui store --store merged merge shard0 shard1")]
    Merge {
        /// The stores to merge in.
        #[arg(required = true, value_name = "STORE")]
        sources: Vec<PathBuf>,
    },
}

/// `embtui completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `embtui bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCmd,
    /// Print one JSON object (what `just bench` reads) instead of one line per figure.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `embtui bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// End to end vs inference alone vs decode + preprocess alone, images/s.
    #[command(
        after_help = "Examples:\n  embtui bench embed --dataset ~/flickr8k --model efficientnet-lite0"
    )]
    Embed {
        #[command(flatten)]
        data: DatasetArgs,
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        batch: BatchArg,
    },
    /// Exact top-10 and arroy (build, latency, recall) on synthetic unit vectors.
    #[command(after_help = "Examples:\n  embtui bench search --n 30000 --dim 768")]
    Search {
        /// Number of vectors.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        n: u64,
        /// Their dimension.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65536))]
        dim: u64,
        /// Queries to time (the first rows).
        #[arg(long, default_value_t = 1000)]
        queries: usize,
    },
    /// The same on a model's stored vectors of a dataset (indexes first if needed).
    #[command(
        after_help = "Examples:\n  embtui bench search-real --dataset ~/flickr8k --model efficientnet-lite0"
    )]
    SearchReal {
        #[command(flatten)]
        data: DatasetArgs,
        #[command(flatten)]
        model: ModelArg,
    },
    /// Key press to frame, thumbnails cached.
    #[command(after_help = "Examples:\n  embtui bench tui --dataset ~/flickr8k --presses 500")]
    Tui {
        #[command(flatten)]
        data: DatasetArgs,
        /// Key presses to time.
        #[arg(long, default_value_t = 500)]
        presses: usize,
    },
}

fn parse_shard(s: &str) -> Result<ShardSpec, String> {
    s.parse()
}

fn parse_device(s: &str) -> Result<Device, String> {
    s.parse()
}

fn parse_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a batch size from 1 to 1024")),
    }
}

fn parse_k(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a cut-off of at least 1")),
    }
}

fn parse_unit(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a relevance threshold in [0, 1]")),
    }
}

fn parse_bootstrap(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 100 => Ok(n),
        _ => Err(format!("`{s}`: a 95% interval needs at least 100 bootstrap resamples")),
    }
}

fn parse_tolerance(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a tolerance ≥ 0")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_option_has_help_and_every_subcommand_an_example() {
        let root = Cli::command();
        let mut commands: Vec<clap::Command> = root.get_subcommands().cloned().collect();
        let bench = root.find_subcommand("bench").cloned().expect("bench");
        commands.extend(bench.get_subcommands().cloned());
        for c in commands.iter().filter(|c| c.get_name() != "bench") {
            let help = c.get_after_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains("Examples:"), "`{}` has no example", c.get_name());
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(a.get_help().is_some(), "`{} --{id}` has no help line", c.get_name());
            }
        }
    }

    #[test]
    fn out_of_range_values_are_refused_at_parse_time() {
        let base = ["embtui", "eval", "--dataset", "d", "--model", "m"];
        for bad in [
            ["--threshold", "2"],
            ["--threshold", "-1"],
            ["--threshold", "NaN"],
            ["--bootstrap", "0"],
            ["--tolerance", "-0.1"],
            ["--tolerance", "inf"],
            ["--batch", "0"],
            ["--k", "0"],
        ] {
            let args: Vec<&str> = base.iter().chain(bad.iter()).copied().collect();
            let err = Cli::try_parse_from(&args).expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let search = Cli::try_parse_from(["embtui", "search", "q.jpg", "--dataset", "d"]);
        assert!(search.is_err());
        let k0 = ["embtui", "search", "q.jpg", "--dataset", "d", "--model", "m", "-k", "0"];
        assert_eq!(Cli::try_parse_from(k0).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn device_takes_a_gpu_index() {
        let c = Cli::try_parse_from(["embtui", "doctor", "--device", "cuda:1"]).unwrap();
        assert_eq!(c.global.device, Device::Cuda(1));
        assert!(Cli::try_parse_from(["embtui", "doctor", "--device", "gpu"]).is_err());
    }
}
