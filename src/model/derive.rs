//! A manifest entry derived from what a Hub repo publishes: `preprocessor_config.json` (the
//! transformers image processor: resize, resample filter, crop, rescale, mean/std),
//! `config.json` (`model_type`, text length, pad id) and the ONNX graphs' own inputs and outputs
//! (which tensor is the embedding and how it is pooled). It reproduces the slow (PIL) image
//! processors of transformers exactly; whatever it cannot map exactly is refused, naming the
//! field and the fix. Pure: the caller reads the files and the graphs.

use serde_json::Value;

use super::manifest::{
    Channels, Interpolation, Layout, ModelEntry, Pooling, Resize, ResizeRule, Rounding, TextTower,
};

/// What `derive` reads besides the JSON files: one ONNX graph's tensors.
#[derive(Debug, Clone, Default)]
pub struct GraphIo {
    /// (name, dims) with -1 for a symbolic dimension.
    pub inputs: Vec<(String, Vec<i64>)>,
    pub outputs: Vec<(String, Vec<i64>)>,
}

impl GraphIo {
    fn output(&self, name: &str) -> Option<&[i64]> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, d)| d.as_slice())
    }
}

/// The Hub files `derive` works from, as paths relative to the models folder.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    pub name: &'a str,
    /// `hf:ORG/NAME@COMMIT (PATH)`.
    pub source: String,
    pub image_file: String,
    pub preprocessor: &'a Value,
    pub config: &'a Value,
    pub image: &'a GraphIo,
    /// (text graph file, tokenizer.json file, its graph, the tokenizer JSON).
    pub text: Option<(String, String, &'a GraphIo, &'a Value)>,
}

/// One derived field: its value in words and the field of the repo it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Derivation {
    pub field: String,
    pub value: String,
    pub from: String,
}

/// A manifest entry and how each of its fields was derived.
#[derive(Debug, Clone)]
pub struct Derived {
    pub entry: ModelEntry,
    pub how: Vec<Derivation>,
    /// Why the text tower was left out, when the repo has none usable.
    pub no_text: Option<String>,
}

/// Why a repo's files could not be turned into a manifest entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}; {fix}")]
pub struct DeriveError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

const BY_HAND: &str =
    "write a manifest entry by hand (see the top of onnx/models.toml) and pass it with --manifest";

fn refuse(field: &str, problem: impl Into<String>) -> DeriveError {
    DeriveError { field: field.into(), problem: problem.into(), fix: BY_HAND.into() }
}

const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
const IMAGENET_DEFAULT_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_DEFAULT_STD: [f32; 3] = [0.229, 0.224, 0.225];
const IMAGENET_STANDARD: [f32; 3] = [0.5, 0.5, 0.5];

/// An image processor class of transformers and its constructor defaults (what applies when
/// `preprocessor_config.json` leaves a field out).
struct Processor {
    class: &'static str,
    /// `size` given as an int means a square (true) or the shortest edge (false):
    /// transformers' `get_size_dict(size, default_to_square=…)` for this class.
    int_is_square: bool,
    size: Size,
    resample: i64,
    crop: Option<u32>,
    mean: [f32; 3],
    std: [f32; 3],
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Size {
    Square(u32),
    Shortest(u32),
}

const PROCESSORS: &[Processor] = &[
    Processor {
        class: "CLIPImageProcessor",
        int_is_square: false,
        size: Size::Shortest(224),
        resample: 3,
        crop: Some(224),
        mean: OPENAI_CLIP_MEAN,
        std: OPENAI_CLIP_STD,
    },
    Processor {
        class: "SiglipImageProcessor",
        int_is_square: true,
        size: Size::Square(224),
        resample: 3,
        crop: None,
        mean: IMAGENET_STANDARD,
        std: IMAGENET_STANDARD,
    },
    Processor {
        class: "ViTImageProcessor",
        int_is_square: true,
        size: Size::Square(224),
        resample: 2,
        crop: None,
        mean: IMAGENET_STANDARD,
        std: IMAGENET_STANDARD,
    },
    Processor {
        class: "DeiTImageProcessor",
        int_is_square: true,
        size: Size::Square(256),
        resample: 3,
        crop: Some(224),
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
    },
    Processor {
        class: "BlipImageProcessor",
        int_is_square: true,
        size: Size::Square(384),
        resample: 3,
        crop: None,
        mean: OPENAI_CLIP_MEAN,
        std: OPENAI_CLIP_STD,
    },
    Processor {
        class: "BitImageProcessor",
        int_is_square: false,
        size: Size::Shortest(224),
        resample: 3,
        crop: Some(224),
        mean: OPENAI_CLIP_MEAN,
        std: OPENAI_CLIP_STD,
    },
    Processor {
        class: "ConvNextImageProcessor",
        int_is_square: false,
        size: Size::Shortest(384),
        resample: 2,
        crop: None,
        mean: IMAGENET_DEFAULT_MEAN,
        std: IMAGENET_DEFAULT_STD,
    },
    Processor {
        class: "EfficientNetImageProcessor",
        int_is_square: true,
        size: Size::Square(600),
        resample: 0,
        crop: None,
        mean: IMAGENET_STANDARD,
        std: IMAGENET_STANDARD,
    },
];

/// The processor class a config names: `image_processor_type` (current) or
/// `feature_extractor_type` (older repos: `CLIPFeatureExtractor` → `CLIPImageProcessor`); the
/// `…Fast` classes compute the same steps with torchvision and are read as the slow ones.
fn processor(pre: &Value) -> Result<(&'static Processor, String), DeriveError> {
    let (field, named) = ["image_processor_type", "feature_extractor_type"]
        .iter()
        .find_map(|f| pre[*f].as_str().map(|v| (*f, v)))
        .ok_or_else(|| {
            refuse(
                "preprocessor_config.json",
                "names no `image_processor_type` or `feature_extractor_type`",
            )
        })?;
    let class = named.trim_end_matches("Fast").replace("FeatureExtractor", "ImageProcessor");
    let class =
        if class == "ConvNeXtImageProcessor" { "ConvNextImageProcessor".into() } else { class };
    let p = PROCESSORS.iter().find(|p| p.class == class).ok_or_else(|| {
        let known: Vec<&str> = PROCESSORS.iter().map(|p| p.class).collect();
        refuse(
            &format!("preprocessor_config.json `{field}`"),
            format!(
                "`{}` is not one embtui reproduces ({})",
                crate::text::sanitize(named),
                known.join(", ")
            ),
        )
    })?;
    Ok((p, format!("preprocessor_config.json `{field}` = {}", crate::text::sanitize(named))))
}

fn flag(pre: &Value, key: &str, default: bool) -> bool {
    pre[key].as_bool().unwrap_or(default)
}

fn side(v: &Value, field: &str) -> Result<u32, DeriveError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=crate::model::manifest::MAX_INPUT_SIDE).contains(n))
        .ok_or_else(|| refuse(field, format!("{v} is not a side length in pixels")))
}

/// `size` as transformers reads it: an int, `{shortest_edge}` or `{height, width}`.
fn size_of(pre: &Value, p: &Processor) -> Result<(Size, String), DeriveError> {
    let v = &pre["size"];
    let field = "preprocessor_config.json `size`";
    if v.is_null() {
        return Ok((p.size, format!("{} default", p.class)));
    }
    if v.is_u64() {
        let n = side(v, field)?;
        let how =
            if p.int_is_square { "an int: a square, as" } else { "an int: the shortest edge, as" };
        return Ok((
            if p.int_is_square { Size::Square(n) } else { Size::Shortest(n) },
            format!("{field} = {n} ({how} {} reads it)", p.class),
        ));
    }
    if let Some(se) = v.get("shortest_edge") {
        if v.get("longest_edge").is_some_and(|l| !l.is_null()) {
            return Err(refuse(field, "gives a `longest_edge` limit as well"));
        }
        let n = side(se, field)?;
        return Ok((Size::Shortest(n), format!("{field}.shortest_edge = {n}")));
    }
    match square(v, field)? {
        Some((h, from)) => Ok((Size::Square(h), from)),
        None => Err(refuse(
            field,
            format!(
                "{} is neither an int, shortest_edge nor height/width",
                crate::text::sanitize(&v.to_string())
            ),
        )),
    }
}

fn crop_of(pre: &Value, p: &Processor) -> Result<Option<(u32, String)>, DeriveError> {
    let default_crop = p.crop.is_some();
    if !flag(pre, "do_center_crop", default_crop) {
        return Ok(None);
    }
    let field = "preprocessor_config.json `crop_size`";
    let v = &pre["crop_size"];
    if v.is_null() {
        return Ok(p.crop.map(|c| (c, format!("{} default", p.class))));
    }
    if v.is_u64() {
        let c = side(v, field)?;
        return Ok(Some((c, format!("{field} = {c}"))));
    }
    match square(v, field)? {
        Some(c) => Ok(Some(c)),
        None => Err(refuse(field, "is neither an int nor height/width")),
    }
}

/// A `{height, width}` size: its side when square (refused otherwise), None without both.
fn square(v: &Value, field: &str) -> Result<Option<(u32, String)>, DeriveError> {
    let (Some(h), Some(w)) = (v.get("height"), v.get("width")) else { return Ok(None) };
    let (h, w) = (side(h, field)?, side(w, field)?);
    if h != w {
        return Err(refuse(field, format!("{h}×{w} is not square; embtui feeds square inputs")));
    }
    Ok(Some((h, format!("{field} = {{height: {h}, width: {w}}}"))))
}

/// PIL's resample codes, as transformers stores them.
fn interpolation(code: i64) -> Result<(Interpolation, &'static str), DeriveError> {
    Ok(match code {
        0 => (Interpolation::Nearest, "NEAREST"),
        1 => (Interpolation::Lanczos3, "LANCZOS"),
        2 => (Interpolation::Bilinear, "BILINEAR"),
        3 => (Interpolation::Bicubic, "BICUBIC"),
        4 => (Interpolation::Area, "BOX"),
        _ => {
            return Err(refuse(
                "preprocessor_config.json `resample`",
                format!("PIL filter {code} (HAMMING or unknown) is not reproduced"),
            ))
        }
    })
}

fn triple(pre: &Value, key: &str, default: [f32; 3]) -> Result<([f32; 3], String), DeriveError> {
    let v = &pre[key];
    if v.is_null() {
        return Ok((default, "class default".into()));
    }
    let field = format!("preprocessor_config.json `{key}`");
    let nums: Vec<f32> = match v {
        Value::Array(a) => a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN) as f32; 3],
        _ => Vec::new(),
    };
    match <[f32; 3]>::try_from(nums.as_slice()) {
        Ok(t) if t.iter().all(|x| x.is_finite()) => Ok((t, field)),
        _ => Err(refuse(&field, format!("{v} is not three numbers"))),
    }
}

/// The preprocessing fields of the entry, with how each was derived.
fn preprocessing(
    pre: &Value,
    e: &mut ModelEntry,
    how: &mut Vec<Derivation>,
) -> Result<(), DeriveError> {
    let (p, class_from) = processor(pre)?;
    let mut say = |field: &str, value: String, from: String| {
        how.push(Derivation { field: field.into(), value, from });
    };
    say("processor", p.class.into(), class_from);
    if !flag(pre, "do_resize", true) {
        return Err(refuse(
            "preprocessor_config.json `do_resize`",
            "is false: images of any size would reach the model",
        ));
    }
    let (size, size_from) = size_of(pre, p)?;
    let code = pre["resample"].as_i64().unwrap_or(p.resample);
    if !pre["resample"].is_null() && !pre["resample"].is_i64() {
        return Err(refuse(
            "preprocessor_config.json `resample`",
            format!("{} is not a PIL filter code", pre["resample"]),
        ));
    }
    let (interp, interp_name) = interpolation(code)?;
    let resample_from = if pre["resample"].is_null() {
        format!("{} default", p.class)
    } else {
        "preprocessor_config.json `resample`".into()
    };
    let mut crop = crop_of(pre, p)?;
    let (rule, to, rule_from) = if p.class == "ConvNextImageProcessor" {
        // transformers' ConvNext: below 384 px, shortest edge to int(size / crop_pct), then a
        // centre crop of `size`; from 384 up, a warp to size×size.
        let Size::Shortest(se) = size else {
            return Err(refuse("preprocessor_config.json `size`", "ConvNext needs shortest_edge"));
        };
        if se < 384 {
            let pct = pre["crop_pct"].as_f64().unwrap_or(224.0 / 256.0);
            if !(pct > 0.0 && pct <= 1.0) {
                return Err(refuse(
                    "preprocessor_config.json `crop_pct`",
                    format!("{pct} is not in (0, 1]"),
                ));
            }
            let to = (f64::from(se) / pct).floor() as u32;
            crop = Some((se, format!("ConvNext: shortest_edge {se} < 384, crop to it")));
            (
                ResizeRule::Shorter,
                to,
                format!("{size_from}, crop_pct {pct}: int({se} / {pct}) = {to}"),
            )
        } else {
            crop = None;
            (ResizeRule::Exact, se, format!("{size_from} ≥ 384: warped to a square"))
        }
    } else {
        match size {
            Size::Shortest(n) => (ResizeRule::Shorter, n, size_from),
            Size::Square(n) => (ResizeRule::Exact, n, size_from),
        }
    };
    if rule == ResizeRule::Shorter && crop.is_none() {
        return Err(refuse(
            "preprocessor_config.json `do_center_crop`",
            "the resize keeps the aspect ratio but nothing crops it to a square",
        ));
    }
    e.resize = Resize { rule, to, interpolation: interp, round: Rounding::Floor };
    say(
        "resize",
        format!("{rule:?} side to {to} px, {interp_name}, long side truncated (int())")
            .to_lowercase(),
        format!("{rule_from}; {resample_from}"),
    );
    e.crop = crop.as_ref().map(|(c, _)| *c);
    e.size = e.crop.unwrap_or(to);
    if let Some((c, from)) = crop {
        say("crop", format!("centre {c}×{c}, offset (w - {c}) // 2"), from);
    }
    normalisation(pre, p, e, how)
}

/// rescale, mean and std (EfficientNet's rescale_offset and include_top folded in).
fn normalisation(
    pre: &Value,
    p: &Processor,
    e: &mut ModelEntry,
    how: &mut Vec<Derivation>,
) -> Result<(), DeriveError> {
    let mut say = |field: &str, value: String, from: String| {
        how.push(Derivation { field: field.into(), value, from });
    };
    let rescale = if flag(pre, "do_rescale", true) {
        pre["rescale_factor"].as_f64().unwrap_or(1.0 / 255.0) as f32
    } else {
        1.0
    };
    say(
        "rescale",
        format!("{rescale}"),
        "preprocessor_config.json `do_rescale`, `rescale_factor`".into(),
    );
    let (mut mean, mut std) = ([0.0; 3], [1.0; 3]);
    let mut norm_from = "`do_normalize` is false".to_string();
    if flag(pre, "do_normalize", true) {
        let (m, mf) = triple(pre, "image_mean", p.mean)?;
        let (s, sf) = triple(pre, "image_std", p.std)?;
        if s.contains(&0.0) {
            return Err(refuse("preprocessor_config.json `image_std`", "has a zero"));
        }
        (mean, std) = (m, s);
        norm_from = format!("mean: {mf}; std: {sf}");
    }
    if p.class == "EfficientNetImageProcessor" {
        if flag(pre, "rescale_offset", false) {
            mean = mean.map(|m| m + 1.0); // x*scale - 1 - mean
            norm_from += "; rescale_offset: x*scale - 1";
        }
        if flag(pre, "include_top", true) && flag(pre, "do_normalize", true) {
            std = std.map(|s| s * s); // divided by std a second time
            norm_from += "; include_top: divided by std twice";
        }
    }
    e.rescale = rescale;
    e.mean = mean;
    e.std = std;
    say("normalise", format!("(x - {mean:?}) / {std:?}"), norm_from);
    Ok(())
}

/// Model types whose embedding is the CLS token of `last_hidden_state`.
const CLS_MODELS: &[&str] = &[
    "vit",
    "dinov2",
    "dinov2_with_registers",
    "deit",
    "beit",
    "vit_msn",
    "vit_mae",
    "data2vec-vision",
];

/// Which output holds the embedding and how it is pooled, from the graph and `model_type`.
fn embedding_output(
    io: &GraphIo,
    model_type: &str,
) -> Result<(String, Pooling, Option<i64>, String), DeriveError> {
    let rank = |d: &[i64]| d.len();
    let last = |d: &[i64], i: usize| d.get(i).copied().filter(|&x| x > 0);
    if let Some(d) = io.output("image_embeds") {
        return Ok((
            "image_embeds".into(),
            Pooling::None,
            last(d, 1),
            "graph output `image_embeds` (the projected image vector)".into(),
        ));
    }
    if model_type.starts_with("clip") {
        return Err(refuse("graph outputs", format!("this CLIP graph has no `image_embeds` (it has {:?}), so its vectors are not in the text space", names(io))));
    }
    if CLS_MODELS.contains(&model_type) {
        if let Some(d) = io.output("last_hidden_state").filter(|d| rank(d) == 3) {
            return Ok(("last_hidden_state".into(), Pooling::Cls, last(d, 2), format!("config.json `model_type` = {model_type}: CLS token (token 0) of `last_hidden_state`, as onnx/export_hf.py pools it")));
        }
    }
    if let Some(d) = io.output("pooler_output") {
        let pooling = match rank(d) {
            2 => Pooling::None,
            4 => Pooling::MeanSpatial,
            r => return Err(refuse("graph output `pooler_output`", format!("has rank {r}"))),
        };
        return Ok((
            "pooler_output".into(),
            pooling,
            last(d, 1),
            format!("graph output `pooler_output` (model_type {model_type})"),
        ));
    }
    if let Some(d) = io.output("last_hidden_state").filter(|d| rank(d) == 4) {
        return Ok((
            "last_hidden_state".into(),
            Pooling::MeanSpatial,
            last(d, 1),
            "graph output `last_hidden_state` [N,C,H,W]: mean over H, W".into(),
        ));
    }
    if let [(name, d)] = io.outputs.as_slice() {
        if name != "logits" && rank(d) == 2 {
            return Ok((
                name.clone(),
                Pooling::None,
                last(d, 1),
                format!("the graph's only output `{name}`"),
            ));
        }
    }
    Err(refuse(
        "graph outputs",
        format!("none of {:?} is an embedding embtui knows how to pool (image_embeds, pooler_output, last_hidden_state)", names(io)),
    ))
}

fn names(io: &GraphIo) -> Vec<String> {
    io.outputs.iter().map(|(n, _)| crate::text::sanitize(n)).collect()
}

/// The image input: its name and layout from the graph's first float input of rank 4.
fn image_input(io: &GraphIo) -> Result<(String, Layout, String), DeriveError> {
    let (name, d) = io.inputs.iter().find(|(_, d)| d.len() == 4).ok_or_else(|| {
        refuse(
            "graph inputs",
            format!(
                "no input of rank 4 among {:?}; is this an image model's graph?",
                io.inputs.iter().map(|(n, _)| n).collect::<Vec<_>>()
            ),
        )
    })?;
    let layout = match (d[1], d[3]) {
        (3, _) => Layout::Nchw,
        (_, 3) => Layout::Nhwc,
        _ if name == "pixel_values" => Layout::Nchw,
        _ => {
            return Err(refuse(
                "graph inputs",
                format!("input `{name}` {d:?} has no 3-channel axis"),
            ))
        }
    };
    Ok((name.clone(), layout, format!("graph input `{name}` {d:?}")))
}

/// Reads a config value at a path like `text_config.max_position_embeddings`.
fn at<'v>(v: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// The text tower, when the repo has one: `text_embeds` (CLIP) or `pooler_output` (SigLIP).
fn text_tower(
    model_type: &str,
    config: &Value,
    file: String,
    tokenizer: String,
    io: &GraphIo,
    tok: &Value,
    how: &mut Vec<Derivation>,
) -> Result<TextTower, String> {
    let output = if io.output("text_embeds").is_some() {
        "text_embeds"
    } else if model_type.starts_with("siglip") && io.output("pooler_output").is_some() {
        "pooler_output"
    } else {
        return Err(format!("the text graph has no `text_embeds` (it has {:?})", names(io)));
    };
    let has = |n: &str| io.inputs.iter().any(|(i, _)| i == n);
    if !has("input_ids") {
        return Err("the text graph has no `input_ids` input".into());
    }
    let max_length = at(config, "text_config.max_position_embeddings")
        .as_u64()
        .or_else(|| tok["truncation"]["max_length"].as_u64())
        .ok_or("config.json has no text_config.max_position_embeddings")?;
    let siglip = model_type.starts_with("siglip");
    let pad_id = siglip.then(|| {
        at(config, "text_config.pad_token_id")
            .as_i64()
            .or_else(|| tok["padding"]["pad_id"].as_i64())
            .or_else(|| {
                tok["added_tokens"].as_array().and_then(|a| {
                    a.iter().find(|t| t["content"] == "<pad>").and_then(|t| t["id"].as_i64())
                })
            })
            .unwrap_or(1)
    });
    how.push(Derivation {
        field: "text".into(),
        value: format!(
            "{file} → `{output}`, max {max_length} tokens{}",
            pad_id.map_or(String::new(), |p| format!(", padded to {max_length} with id {p}"))
        ),
        from: format!(
            "graph outputs; config.json text_config.max_position_embeddings{}",
            if siglip { "; SigLIP was trained on max-length padding" } else { "" }
        ),
    });
    Ok(TextTower {
        file,
        tokenizer,
        max_length: max_length as usize,
        pad_to: siglip.then_some(max_length as usize),
        pad_id,
        input_ids: "input_ids".into(),
        attention_mask: has("attention_mask").then(|| "attention_mask".into()),
        output: output.into(),
    })
}

/// The manifest entry for a pulled repo, or the field that stops it.
pub fn derive(src: &Sources<'_>) -> Result<Derived, DeriveError> {
    let model_type = src.config["model_type"].as_str().unwrap_or("").to_owned();
    let mut how = vec![Derivation {
        field: "model_type".into(),
        value: if model_type.is_empty() {
            "(none)".into()
        } else {
            crate::text::sanitize(&model_type)
        },
        from: "config.json `model_type`".into(),
    }];
    let (input, layout, input_from) = image_input(src.image)?;
    let (output, pooling, dim, out_from) = embedding_output(src.image, &model_type)?;
    let mut e = ModelEntry {
        name: src.name.to_owned(),
        family: if model_type.is_empty() { "hub".into() } else { model_type.clone() },
        source: src.source.clone(),
        license: "see the model card".into(),
        description: format!("pulled from the Hugging Face Hub; {out_from}"),
        file: src.image_file.clone(),
        input,
        layout,
        size: 0,
        resize: Resize {
            rule: ResizeRule::Exact,
            to: 0,
            interpolation: Interpolation::Bilinear,
            round: Rounding::Floor,
        },
        crop: None,
        pad: None,
        rescale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
        channels: Channels::Rgb,
        output,
        pooling,
        dim: dim.map_or(0, |d| d as usize),
        logits: None,
        text: None,
    };
    how.push(Derivation {
        field: "input".into(),
        value: format!("{} ({:?})", e.input, e.layout).to_lowercase(),
        from: input_from,
    });
    how.push(Derivation {
        field: "output".into(),
        value: format!("{} pooled {:?}", e.output, e.pooling).to_lowercase(),
        from: out_from,
    });
    preprocessing(src.preprocessor, &mut e, &mut how)?;
    let mut no_text = None;
    if let Some((file, tokenizer, io, tok)) = &src.text {
        match text_tower(
            &model_type,
            src.config,
            file.clone(),
            tokenizer.clone(),
            io,
            tok,
            &mut how,
        ) {
            Ok(t) => e.text = Some(t),
            Err(why) => no_text = Some(why),
        }
    }
    Ok(Derived { entry: e, how, no_text })
}

#[cfg(test)]
mod tests;
