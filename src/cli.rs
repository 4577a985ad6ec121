//! Command-line types (clap derive) only; `config.rs` resolves them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::dataset::Format;
use crate::model::Device;

const EXIT_CODES: &str = "\
Exit codes: 0 ok; 1 regression found by --check, or nothing found; 2 usage or data error.
Environment: ORT_DYLIB_PATH (ONNX Runtime library), EMBTUI_MODELS (models folder),
EMBTUI_STORE (vector store), NO_COLOR (no colours).";

/// Which vision embedding model to trust for image similarity search, and why.
#[derive(Debug, Parser)]
#[command(name = "embtui", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Folder holding the ONNX files (default: ./models beside the checkout, or $EMBTUI_MODELS).
    #[arg(long, global = true, value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Extra model manifest(s) adding or overriding zoo entries.
    #[arg(long, global = true, value_name = "FILE")]
    pub manifest: Vec<PathBuf>,
    /// Vector store (LMDB folder; default: ~/.cache/embtui/store or $EMBTUI_STORE).
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Execution provider.
    #[arg(long, global = true, value_enum, default_value_t = Device::Auto)]
    pub device: Device,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Debug, Args, Clone)]
pub struct DatasetArgs {
    /// Dataset folder (Flickr30k, Flickr8k, COCO or a plain image folder).
    #[arg(long, value_name = "DIR")]
    pub dataset: PathBuf,
    /// Force a caption layout instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Keep only this split (Karpathy JSON or Hugging Face CSV), e.g. `test`.
    #[arg(long)]
    pub split: Option<String>,
    /// Keep the first N images (sorted by name).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Keep N images chosen at random with --seed.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Seed for --sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed a dataset with one or more models into the vector store (resumable, cached).
    #[command(
        after_help = "Examples:\n  embtui index --dataset ~/flickr30k --model efficientnet-lite0,dinov2-s14-imgfocus\n  embtui index --dataset ~/coco --model open-nsfw --device cpu --batch 32"
    )]
    Index {
        #[command(flatten)]
        data: DatasetArgs,
        /// Models, comma-separated (see `embtui models`).
        #[arg(long, value_delimiter = ',', required = true)]
        model: Vec<String>,
        /// Images per inference batch.
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Index what is missing, then score each model with caption-overlap retrieval metrics.
    #[command(
        after_help = "Examples:\n  embtui eval --dataset ~/flickr30k --model efficientnet-lite0,open-nsfw\n  embtui eval --dataset D --model M --json --out report.json\n  embtui eval --dataset D --model M --check eval/baseline.json --tolerance 0.01"
    )]
    Eval {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long, value_delimiter = ',', required = true)]
        model: Vec<String>,
        /// Cut-offs for the @k metrics.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 5, 10])]
        k: Vec<usize>,
        /// Relevance method: `tfidf` (default) or `jaccard`.
        #[arg(long, default_value = "tfidf")]
        relevance: String,
        /// Relevance threshold τ for p@k, map@r and mrr.
        #[arg(long, default_value_t = 0.3)]
        threshold: f32,
        /// Bootstrap resamples for the confidence intervals.
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
        /// Print only the JSON report on stdout.
        #[arg(long)]
        json: bool,
        /// Also write the JSON report to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Compare with a saved report; exit 1 if a metric dropped by more than --tolerance.
        #[arg(long, value_name = "BASELINE")]
        check: Option<PathBuf>,
        #[arg(long, default_value_t = 0.01)]
        tolerance: f64,
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// The k nearest dataset images to any image file.
    #[command(
        after_help = "Examples:\n  embtui search photo.jpg --dataset ~/flickr30k --model dinov2-s14-imgfocus -k 5 --show\n  embtui search --text \"a dog in the snow\" --dataset ~/flickr30k --model clip-vit-b32"
    )]
    Search {
        /// Query image file.
        #[arg(required_unless_present = "text", conflicts_with = "text")]
        image: Option<PathBuf>,
        /// Query by text instead (models with a text tower: CLIP, SigLIP).
        #[arg(long)]
        text: Option<String>,
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long)]
        model: String,
        #[arg(short, default_value_t = 5)]
        k: usize,
        /// Exact search instead of arroy's approximate one.
        #[arg(long)]
        exact: bool,
        #[arg(long)]
        json: bool,
        /// Show the query and neighbours as inline thumbnails (kitty, iTerm, sixel, blocks).
        #[arg(long)]
        show: bool,
    },
    /// Print the text-tower embedding of each TEXT as JSON lines (token ids and vector).
    TextEmbed {
        #[arg(long)]
        model: String,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Write a dataset's embeddings as FILE.npy (float32 [N, dim]) and FILE.ids.txt.
    #[command(
        after_help = "Examples:\n  embtui export --dataset ~/flickr8k --model efficientnet-lite0 --out lite0.npy"
    )]
    Export {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long)]
        model: String,
        #[arg(long, value_name = "FILE.npy")]
        out: PathBuf,
        /// Also write the model's class logits (manifest `logits`) as FILE.logits.npy.
        #[arg(long)]
        logits: bool,
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Compare models side by side in the terminal, with inline thumbnails (works over SSH).
    #[command(
        after_help = "Examples:\n  embtui browse --dataset ~/flickr30k --model efficientnet-lite0,dinov2-s14-imgfocus\n  embtui browse --dataset D --model M --image-protocol halfblocks   # plain SSH, tmux\n\nInside tmux, kitty/sixel images need `set -g allow-passthrough on`; halfblocks always work."
    )]
    Browse {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long, value_delimiter = ',', required = true)]
        model: Vec<String>,
        /// Terminal graphics protocol for thumbnails (auto detects; halfblocks work everywhere).
        #[arg(long, value_enum, default_value_t = ImageProtocol::Auto)]
        image_protocol: ImageProtocol,
    },
    /// The model zoo: what is installed and verified, dims, licences.
    Models {
        #[arg(long)]
        json: bool,
    },
    /// Check ONNX Runtime, CUDA, the models and the store; say how to fix what is wrong.
    Doctor,
    /// What embtui reads in a dataset: layout, images, captions, splits and every problem found.
    #[command(
        after_help = "Examples:\n  embtui dataset --dataset ~/flickr30k\n  embtui dataset --dataset ~/flickr30k --split test --json"
    )]
    Dataset {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long)]
        json: bool,
    },
    /// Check what caption relevance means on a dataset: same-subject pairs vs unrelated ones,
    /// or explain one pair.
    #[command(
        after_help = "Examples:\n  embtui relevance --dataset ~/flickr30k --subjects dog,snow,bicycle\n  embtui relevance --dataset D --pair 1000268201_693b08cb0e.jpg,1001773457_577c3a7d70.jpg"
    )]
    Relevance {
        #[command(flatten)]
        data: DatasetArgs,
        /// Subject words to group photos by (a photo belongs when ≥ 3 captions use the word).
        #[arg(long, value_delimiter = ',', default_values_t = ["dog", "snow", "bicycle", "beach", "ball", "water"].map(String::from))]
        subjects: Vec<String>,
        /// Explain the relevance of two images instead: NAME,NAME.
        #[arg(long, value_delimiter = ',', num_args = 1)]
        pair: Vec<String>,
        /// `tfidf` or `jaccard`; both when omitted.
        #[arg(long)]
        relevance: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Measurements behind `just bench` (one JSON object on stdout); see docs/performance.md.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

/// What `embtui bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// End to end vs inference alone vs decode + preprocess alone, images/s.
    Embed {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long)]
        model: String,
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Exact top-10 and arroy (build, latency, recall) on synthetic unit vectors.
    Search {
        #[arg(long)]
        n: usize,
        #[arg(long)]
        dim: usize,
        /// Queries to time (the first rows).
        #[arg(long, default_value_t = 1000)]
        queries: usize,
    },
    /// The same on a model's stored vectors of a dataset (indexes first if needed).
    SearchReal {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long)]
        model: String,
    },
    /// Key press to frame, thumbnails cached.
    Tui {
        #[command(flatten)]
        data: DatasetArgs,
        #[arg(long, default_value_t = 500)]
        presses: usize,
    },
}
