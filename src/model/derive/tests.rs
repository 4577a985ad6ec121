#![allow(clippy::unreadable_literal)] // the constants as the configs on the Hub write them

use serde_json::json;

use super::*;

fn io(inputs: &[(&str, &[i64])], outputs: &[(&str, &[i64])]) -> GraphIo {
    let own = |v: &[(&str, &[i64])]| v.iter().map(|(n, d)| ((*n).to_owned(), d.to_vec())).collect();
    GraphIo { inputs: own(inputs), outputs: own(outputs) }
}

fn run(pre: &Value, config: &Value, image: &GraphIo) -> Result<Derived, DeriveError> {
    derive(&Sources {
        name: "org/m",
        source: "hf:org/m@c (onnx/model.onnx)".into(),
        image_file: "hub/org--m--c/onnx/model.onnx".into(),
        preprocessor: pre,
        config,
        image,
        text: None,
    })
}

const PIXELS: (&str, &[i64]) = ("pixel_values", &[-1, 3, -1, -1]);

#[test]
fn old_clip_feature_extractor_int_size_is_the_shortest_edge() {
    // Xenova/clip-vit-base-patch32's preprocessor_config.json (transformers 4.2x era).
    let pre = json!({"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224});
    let g = io(&[PIXELS], &[("image_embeds", &[-1, 512]), ("last_hidden_state", &[-1, 50, 768])]);
    let d = run(&pre, &json!({"model_type": "clip"}), &g).unwrap();
    let e = &d.entry;
    assert_eq!(
        (e.resize.rule, e.resize.to, e.resize.interpolation, e.resize.round),
        (ResizeRule::Shorter, 224, Interpolation::Bicubic, Rounding::Floor)
    );
    assert_eq!(
        (e.crop, e.size, e.output.as_str(), e.pooling, e.dim),
        (Some(224), 224, "image_embeds", Pooling::None, 512)
    );
    assert!((e.rescale - 1.0 / 255.0).abs() < 1e-9);
    assert_eq!(e.mean, OPENAI_CLIP_MEAN);
    assert_eq!(d.how[0].from, "config.json `model_type`");
    assert!(d
        .how
        .iter()
        .any(|h| h.from
            == "preprocessor_config.json `feature_extractor_type` = CLIPFeatureExtractor"));
}

#[test]
fn dinov2_bit_processor_takes_the_cls_token() {
    let pre = json!({"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 256},
        "crop_size": {"height": 224, "width": 224}, "do_center_crop": true, "resample": 3,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]});
    let g = io(&[PIXELS], &[("last_hidden_state", &[-1, -1, 768]), ("pooler_output", &[-1, 768])]);
    let e = run(&pre, &json!({"model_type": "dinov2"}), &g).unwrap().entry;
    assert_eq!(
        (e.resize.rule, e.resize.to, e.crop, e.size),
        (ResizeRule::Shorter, 256, Some(224), 224)
    );
    assert_eq!((e.output.as_str(), e.pooling, e.dim), ("last_hidden_state", Pooling::Cls, 768));
    assert_eq!(e.std, IMAGENET_DEFAULT_STD);
}

#[test]
fn vit_int_size_is_a_square_and_defaults_to_bilinear() {
    let pre = json!({"feature_extractor_type": "ViTFeatureExtractor", "size": 224, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]});
    let g = io(&[PIXELS], &[("last_hidden_state", &[-1, 197, 768]), ("pooler_output", &[-1, 768])]);
    let e = run(&pre, &json!({"model_type": "vit"}), &g).unwrap().entry;
    assert_eq!(
        (e.resize.rule, e.resize.to, e.resize.interpolation, e.crop),
        (ResizeRule::Exact, 224, Interpolation::Bilinear, None)
    );
    assert_eq!(e.pooling, Pooling::Cls);
}

#[test]
fn convnext_crop_pct_gives_resize_then_crop() {
    // Qdrant/resnet50-onnx style: ConvNext processor, shortest_edge 224, crop_pct 0.875.
    let pre = json!({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224}, "crop_pct": 0.875, "resample": 3});
    let g = io(
        &[PIXELS],
        &[("last_hidden_state", &[-1, 2048, 7, 7]), ("pooler_output", &[-1, 2048, 1, 1])],
    );
    let e = run(&pre, &json!({"model_type": "resnet"}), &g).unwrap().entry;
    // int(224 / 0.875) = 256, then a 224 centre crop.
    assert_eq!(
        (e.resize.rule, e.resize.to, e.crop, e.size),
        (ResizeRule::Shorter, 256, Some(224), 224)
    );
    assert_eq!(
        (e.output.as_str(), e.pooling, e.dim),
        ("pooler_output", Pooling::MeanSpatial, 2048)
    );
    let big =
        json!({"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 384}});
    let e = run(&big, &json!({"model_type": "convnext"}), &g).unwrap().entry;
    assert_eq!((e.resize.rule, e.resize.to, e.crop), (ResizeRule::Exact, 384, None));
}

#[test]
fn efficientnet_divides_by_std_twice_like_transformers() {
    let pre = json!({"image_processor_type": "EfficientNetImageProcessor", "size": {"height": 600, "width": 600},
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.5, 0.25, 0.2], "include_top": true, "resample": 0});
    let g = io(&[PIXELS], &[("pooler_output", &[-1, 2560])]);
    let e = run(&pre, &json!({"model_type": "efficientnet"}), &g).unwrap().entry;
    assert_eq!(e.std, [0.25, 0.0625, 0.040_000_003]);
    assert_eq!(e.resize.interpolation, Interpolation::Nearest);
}

#[test]
fn what_cannot_be_reproduced_is_refused_naming_the_field() {
    let g = io(&[PIXELS], &[("pooler_output", &[-1, 8])]);
    let cases = [
        (json!({"image_processor_type": "DetrImageProcessor"}), "preprocessor_config.json `image_processor_type`: `DetrImageProcessor` is not one embtui reproduces"),
        (json!({"image_processor_type": "ViTImageProcessor", "size": {"height": 224, "width": 160}}), "preprocessor_config.json `size`: 224×160 is not square"),
        (json!({"image_processor_type": "ViTImageProcessor", "resample": 5}), "preprocessor_config.json `resample`: PIL filter 5"),
        (json!({"image_processor_type": "CLIPImageProcessor", "do_center_crop": false}), "preprocessor_config.json `do_center_crop`: the resize keeps the aspect ratio"),
        (json!({}), "preprocessor_config.json: names no `image_processor_type`"),
    ];
    for (pre, want) in cases {
        let err = run(&pre, &json!({"model_type": "vit"}), &g).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}");
        assert!(err.ends_with("pass it with --manifest"), "{err}");
    }
    let logits = io(&[PIXELS], &[("logits", &[-1, 1000])]);
    let err = run(
        &json!({"image_processor_type": "ViTImageProcessor"}),
        &json!({"model_type": "vit"}),
        &logits,
    )
    .unwrap_err();
    assert_eq!(err.field, "graph outputs");
    let clip = io(&[PIXELS], &[("last_hidden_state", &[-1, 50, 768])]);
    let err = run(
        &json!({"image_processor_type": "CLIPImageProcessor"}),
        &json!({"model_type": "clip"}),
        &clip,
    )
    .unwrap_err();
    assert!(err.problem.contains("no `image_embeds`"), "{err}");
}

#[test]
fn siglip_text_tower_pads_to_max_length() {
    let pre = json!({"image_processor_type": "SiglipImageProcessor", "size": {"height": 224, "width": 224}});
    let config = json!({"model_type": "siglip", "text_config": {"max_position_embeddings": 64, "pad_token_id": 1}});
    let image =
        io(&[PIXELS], &[("pooler_output", &[-1, 768]), ("last_hidden_state", &[-1, 196, 768])]);
    let text = io(
        &[("input_ids", &[-1, -1])],
        &[("pooler_output", &[-1, 768]), ("last_hidden_state", &[-1, -1, 768])],
    );
    let tok = json!({});
    let d = derive(&Sources {
        name: "org/s",
        source: "s".into(),
        image_file: "i.onnx".into(),
        preprocessor: &pre,
        config: &config,
        image: &image,
        text: Some(("t.onnx".into(), "tokenizer.json".into(), &text, &tok)),
    })
    .unwrap();
    let t = d.entry.text.unwrap();
    assert_eq!((t.max_length, t.pad_to, t.pad_id, t.attention_mask), (64, Some(64), Some(1), None));
    assert_eq!(t.output, "pooler_output");
    assert_eq!(
        (d.entry.resize.interpolation, d.entry.mean),
        (Interpolation::Bicubic, IMAGENET_STANDARD)
    );
}
