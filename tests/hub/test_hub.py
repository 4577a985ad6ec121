#!/usr/bin/env python3
"""`just test-hub`: `embtui models pull` against a Hub stand-in on 127.0.0.1 (server.py), with
repos built from tiny random models in the Hub's two ONNX layouts (make_repos.py).

Checks, each printed as `ok`/`FAIL` with its numbers, then `N passed, M failed`:
  - the server answers Python's own huggingface_hub client (snapshot_download, hf_hub_download,
    its RepositoryNotFound / EntryNotFound / GatedRepo errors): the protocol, not our idea of it;
  - every repo pulls, and embtui's vectors of real photos match the transformers image processor
    + torch (min cosine >= 0.9999); CLIP and SigLIP text vectors and token ids too;
  - the cache is shared both ways with Python (files Python downloaded are used offline, and
    Python finds embtui's downloads with local_files_only);
  - variants (fp16, quantized) pull their own file; HF_HUB_OFFLINE=1 works after a pull;
  - a missing repo, a missing variant, a repo without a processor config, a safetensors-only
    repo, a gated repo without a token, a server that stalls mid-file: exit 2 naming the fix,
    and nothing half-written in any snapshot; a download killed halfway resumes with a Range
    request and ends with the right sha256.
Runs on either export stack (`just test-hub`, `just test-hub-modern`). Needs ../shared/data.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
PHOTOS = os.path.join(ROOT, "..", "shared", "data", "flickr8k-1k", "Images")
BINARY = os.path.join(ROOT, "target", "release", "embtui")
RESULTS = []


def check(name, ok, detail):
    ok = bool(ok)
    RESULTS.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


class Server:
    """server.py in a subprocess; stops when its stdin closes."""

    def __init__(self, root, log, *flags):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py"), root, "--log", log, *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening "), line
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.log = log

    def wait_for(self, prefix):
        """The next line the server prints that starts with `prefix` (it prints when it acts)."""
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line.split()
        raise RuntimeError(f"server ended before printing {prefix!r}")

    def requests(self):
        if not os.path.exists(self.log):
            return []
        return [json.loads(x) for x in open(self.log)]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait()


def embtui(env, *args):
    return subprocess.run([BINARY, *args], env=env, capture_output=True, text=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshots_whole(cache, repos_root):
    """Every file of every snapshot in `cache` is the repo's file, byte for byte; returns
    (ok, files checked)."""
    n = 0
    for folder in os.listdir(cache) if os.path.isdir(cache) else []:
        repo = folder[len("models--"):].replace("--", "/")
        snaps = os.path.join(cache, folder, "snapshots")
        for base, _, names in os.walk(snaps):
            for name in names:
                path = os.path.join(base, name)
                rel = os.path.relpath(path, snaps).split(os.sep, 1)[1]
                if sha256(path) != sha256(os.path.join(repos_root, repo, rel)):
                    return False, n
                n += 1
    return True, n


def main():
    if not os.path.isdir(PHOTOS):
        if os.environ.get("CI"):
            sys.exit(f"FAIL: {PHOTOS} is missing (CI needs ../shared/data)")
        print(f"SKIP: {PHOTOS} is missing; the Hub tests need real photos")
        return
    import numpy as np
    import torch
    from PIL import Image

    import make_repos

    work = tempfile.mkdtemp(prefix="embtui-hub-")
    try:
        if "--installed-only" in sys.argv:
            installed(work, make_repos)
        else:
            run(work, np, torch, Image, make_repos)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed, failed = sum(RESULTS), len(RESULTS) - sum(RESULTS)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run(work, np, torch, Image, make_repos):
    repos = os.path.join(work, "repos")
    t0 = time.time()
    refs = make_repos.build(repos, work)
    no_pre = os.path.join(repos, "tiny-hub", "no-preprocessor")
    shutil.copytree(os.path.join(repos, "tiny-hub", "vit-old-config"), no_pre)
    os.remove(os.path.join(no_pre, "preprocessor_config.json"))
    print(f"built {len(refs)} model repos + 3 for errors in {time.time() - t0:.1f} s", flush=True)
    names = sorted(os.listdir(PHOTOS))[:12]
    photos = os.path.join(work, "photos")
    os.makedirs(photos)
    for n in names:
        os.symlink(os.path.join(PHOTOS, n), os.path.join(photos, n))
    images = [Image.open(os.path.join(photos, n)).convert("RGB") for n in names]

    server = Server(repos, os.path.join(work, "log.jsonl"), "--gated", "tiny-hub/gated")
    try:
        python_client(server, work, repos)
        env = dict(os.environ, HF_ENDPOINT=server.url, HF_HOME=os.path.join(work, "hf"), NO_COLOR="1")
        env.pop("HF_HUB_OFFLINE", None)
        env.pop("HF_TOKEN", None)
        models = os.path.join(work, "models")
        pulled = {}
        for repo, (ref, arch, model, src) in refs.items():
            pulled[repo] = parity(env, models, work, repo, ref, arch, images, photos, np, torch)
            if arch in ("clip", "siglip"):
                text_parity(env, models, repo, arch, model, src, np, torch)
        exporter_agrees(models, repos)
        in_use(env, models, work)
        shared_cache(server, env, models, work, repos)
        variants(env, models, work, repos, photos, np)
        offline(server, env, work, photos)
        errors(server, env, work, repos)
    finally:
        server.stop()
    stalled_and_resumed(work, repos)


def installed(work, make_repos):
    """The binary `just install` put on PATH, run from its HOME with no flags pointing at the
    checkout: a pull lands in the data folder and is verified there (.ci/install-check)."""
    home, binary = os.environ["EMBTUI_INSTALLED_HOME"], os.environ["EMBTUI_INSTALLED_BIN"]
    repos = os.path.join(work, "repos")
    make_repos.build(repos, work)
    server = Server(repos, os.path.join(work, "log.jsonl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBTUI_", "ORT_", "XDG_"))}
    env.update(HOME=home, HF_ENDPOINT=server.url, NO_COLOR="1")
    try:
        pull = subprocess.run([binary, "models", "pull", "tiny-hub/dinov2"], env=env, cwd=home, capture_output=True, text=True)
        listed = subprocess.run([binary, "models", "--json"], env=env, cwd=home, capture_output=True, text=True)
        doctor = subprocess.run([binary, "--device", "cpu", "doctor"], env=env, cwd=home, capture_output=True, text=True)
    finally:
        server.stop()
    rows = {r["name"]: r for r in json.loads(listed.stdout or "[]")}
    row = rows.get("tiny-hub/dinov2", {})
    data = os.path.join(home, ".local", "share", "embtui", "models")
    check("installed binary pulls from $HOME", pull.returncode == 0 and row.get("verified") is True
          and os.path.exists(os.path.join(data, "hub.toml")) and doctor.returncode == 0,
          f"pull exit {pull.returncode}, listed installed={row.get('installed')} verified={row.get('verified')}, "
          f"entry in {data}/hub.toml, cache {home}/.cache/huggingface/hub, doctor exit {doctor.returncode} "
          + (pull.stderr + doctor.stdout)[-300:] * (pull.returncode != 0 or doctor.returncode != 0))


def python_client(server, work, repos):
    """The server as Python's huggingface_hub sees it (client_check.py, its own process)."""
    env = dict(os.environ, HF_ENDPOINT=server.url, HF_HOME=os.path.join(work, "hf-python"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)
    res = subprocess.run([sys.executable, os.path.join(HERE, "client_check.py"), repos], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        return check("python client", False, res.stderr.strip()[-400:])
    r = json.loads(res.stdout.splitlines()[-1])
    check("python client snapshot_download", r["equal"] and r["snapshot"] == r["ref_main"] and r["link"].startswith("../../../blobs/"),
          f"huggingface_hub {r['version']}: snapshot {r['snapshot'][:12]} = refs/main, files equal, link {r['link'][:24]}…")
    check("python client hf_hub_download", r["one_equal"], f"onnx/model.onnx_data {r['one_size']} bytes, sha256 equal")
    check("python client errors", r["raised"] == ["RepositoryNotFoundError", "EntryNotFoundError", "GatedRepoError"], ", ".join(r["raised"]))


def parity(env, models, work, repo, ref, arch, images, photos, np, torch):
    """Pull, then embtui's vectors of the photos against transformers + torch."""
    res = embtui(env, "--models-dir", models, "models", "pull", repo)
    if res.returncode != 0:
        check(f"pull {repo}", False, res.stderr.strip()[-400:])
        return None
    npy = os.path.join(work, repo.replace("/", "_") + ".npy")
    res = embtui(env, "--decode", "exact", "--device", "cpu", "--models-dir", models, "--store", os.path.join(work, "store"),
                 "export", "--model", repo, "--dataset", photos, "--out", npy)
    if res.returncode != 0:
        check(f"pull {repo}", False, "export: " + res.stderr.strip()[-400:])
        return None
    ours = np.load(npy)
    with torch.no_grad():
        want = ref(images).numpy()
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    cos = (ours * want).sum(1)
    lock = json.load(open(os.path.join(models, "models.lock.json")))[repo]
    check(f"pull {repo}", cos.min() >= 0.9999 and len(cos) == len(images),
          f"{arch}: {len(cos)} photos, embtui vs transformers+torch min cos {cos.min():.6f}, "
          f"commit {lock['hub']['commit'][:12]}, {1 + len(lock['files'])} files hashed")
    return ours


def text_parity(env, models, repo, arch, model, src, np, torch):
    from transformers import AutoTokenizer

    import test_export

    tok = AutoTokenizer.from_pretrained(src)
    res = embtui(env, "--models-dir", models, "text-embed", "--json", "--model", repo, *test_export.TEXTS)
    if res.returncode != 0:
        return check(f"text {repo}", False, res.stderr.strip()[-300:])
    worst, ids_equal = 1.0, True
    for text, got in zip(test_export.TEXTS, json.loads(res.stdout)):
        if arch == "siglip":
            enc = tok([text], padding="max_length", max_length=model.config.text_config.max_position_embeddings, return_tensors="pt")
            with torch.no_grad():
                ref = test_export.export_hf.features(model.get_text_features(input_ids=enc["input_ids"]))[0].numpy()
        else:
            enc = tok([text], return_tensors="pt")
            with torch.no_grad():
                ref = test_export.export_hf.features(model.get_text_features(
                    input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))[0].numpy()
        ids_equal &= got["ids"] == enc["input_ids"][0].tolist()
        worst = min(worst, float(np.array(got["embedding"]) @ (ref / np.linalg.norm(ref))))
    check(f"text {repo}", ids_equal and worst >= 0.9999,
          f"{len(test_export.TEXTS)} texts, token ids {'equal' if ids_equal else 'DIFFER'}, min cos {worst:.6f}")


def exporter_agrees(models, repos):
    """onnx/export_hf.py's own preprocessing mapping (transformers' AutoImageProcessor) and
    embtui's Rust derivation give the same fields for every repo the exporter handles."""
    import test_export

    entries = {}
    text = open(os.path.join(models, "hub.toml")).read()
    import tomllib
    for e in tomllib.loads(text)["model"]:
        entries[e["name"]] = e
    worst, compared = [], 0
    for repo in ("tiny-hub/clip", "tiny-hub/siglip", "tiny-hub/vit-old-config", "tiny-hub/dinov2"):
        py = test_export.export_hf.preprocessing(os.path.join(repos, repo))
        rs = entries[repo]
        same = (py["size"] == rs["size"] and py["resize"]["rule"] == rs["resize"]["rule"]
                and py["resize"]["to"] == rs["resize"]["to"]
                and py["resize"]["interpolation"] == rs["resize"]["interpolation"]
                and py.get("crop") == rs.get("crop")
                and abs(py["rescale"] - rs["rescale"]) < 1e-7
                and all(abs(a - b) < 1e-6 for a, b in zip(py["mean"] + py["std"], rs["mean"] + rs["std"])))
        compared += 1
        if not same:
            worst.append(f"{repo}: python {py} vs rust {rs}")
    check("exporter and Rust derivation agree", not worst and compared == 4,
          f"{compared} processor configs: size, resize rule/side/filter, crop, rescale, mean, std " + "; ".join(worst)[:400])


def in_use(env, models, work):
    """A pulled model where users meet it: `search --text`, the TUI's `t` prompt (tmux), an eval
    report naming the repo and commit, `--precision fp16` running the repo's fp16 variant."""
    import test_export

    captioned = os.path.join(ROOT, "fixtures", "flickr30k-token")
    store = os.path.join(work, "store-use")
    res = embtui(env, "--models-dir", models, "--store", store, "--device", "cpu", "search", "--json", "--text",
                 test_export.TEXTS[0], "-k", "3", "--model", "tiny-hub/clip", "--dataset", captioned)
    hits = json.loads(res.stdout)["hits"] if res.returncode == 0 else []
    check("search --text with a pulled CLIP", len(hits) == 3, f"{len(hits)} hits " + res.stderr.strip()[-200:])
    tui = test_export.tui_text_query(BINARY, models, "tiny-hub/siglip", captioned, store)
    check("TUI text query with a pulled SigLIP", tui, "tmux: `t`, a caption, Enter → ranked neighbours")
    res = embtui(env, "--models-dir", models, "--store", store, "--device", "cpu", "eval", "--json", "--relevance", "tfidf",
                 "--model", "tiny-hub/dinov2,tiny-hub/clip", "--dataset", captioned)
    lock = json.load(open(os.path.join(models, "models.lock.json")))
    sources = [m.get("source", "") for m in json.loads(res.stdout)["models"]] if res.returncode == 0 else []
    want = [f"hf:tiny-hub/dinov2@{lock['tiny-hub/dinov2']['hub']['commit']} (onnx/model.onnx)",
            f"hf:tiny-hub/clip@{lock['tiny-hub/clip']['hub']['commit']} (onnx/vision_model.onnx)"]
    check("eval report names repo and commit", sources == want, f"models[].source = {sources} " + res.stderr.strip()[-200:])
    res = embtui(env, "--models-dir", models, "--store", store, "--device", "cpu", "--precision", "fp16", "export",
                 "--model", "tiny-hub/clip", "--dataset", captioned, "--out", os.path.join(work, "p16.npy"))
    lock = json.load(open(os.path.join(models, "models.lock.json")))
    check("--precision fp16 runs the repo's fp16 variant", res.returncode == 0 and "tiny-hub/clip:fp16" in lock,
          f"exit {res.returncode} " + res.stderr.strip()[-200:])


def shared_cache(server, env, models, work, repos):
    """Python's downloads serve embtui offline, and embtui's serve Python offline."""
    before = len(server.requests())
    py_env = dict(env, HF_HOME=os.path.join(work, "hf-python"), HF_HUB_OFFLINE="1")
    res = embtui(py_env, "--models-dir", os.path.join(work, "models-py"), "models", "pull", "tiny-hub/clip")
    check("embtui reuses Python's cache", res.returncode == 0 and len(server.requests()) == before,
          f"HF_HUB_OFFLINE=1 pull from Python's snapshot: exit {res.returncode}, {len(server.requests()) - before} requests "
          + res.stderr.strip()[-200:])
    code = ("import os; from huggingface_hub import snapshot_download; "
            "p = snapshot_download('tiny-hub/siglip', local_files_only=True); "
            "print(p); print(os.path.exists(os.path.join(p, 'onnx', 'vision_model.onnx_data')))")
    res = subprocess.run([sys.executable, "-c", code], env=dict(env, HF_HUB_OFFLINE="1"), capture_output=True, text=True)
    lines = res.stdout.split()
    check("Python reuses embtui's cache", res.returncode == 0 and lines[-1:] == ["True"],
          f"local_files_only snapshot_download of tiny-hub/siglip: {lines[0][-52:] if lines else res.stderr.strip()[-200:]}")


def variants(env, models, work, repos, photos, np):
    base = np.load(os.path.join(work, "tiny-hub_clip.npy"))
    for variant in ("fp16", "quantized"):
        name = f"tiny-hub/clip:{variant}"
        res = embtui(env, "--models-dir", models, "models", "pull", "tiny-hub/clip", "--variant", variant)
        npy = os.path.join(work, f"clip-{variant}.npy")
        res2 = embtui(env, "--decode", "exact", "--device", "cpu", "--models-dir", models, "--store", os.path.join(work, "store"),
                      "export", "--model", name, "--dataset", photos, "--out", npy)
        if res.returncode or res2.returncode:
            check(f"variant {variant}", False, (res.stderr + res2.stderr).strip()[-300:])
            continue
        lock = json.load(open(os.path.join(models, "models.lock.json")))[name]
        want = sha256(os.path.join(repos, "tiny-hub", "clip", "onnx", f"vision_model_{variant}.onnx"))
        cos = (np.load(npy) * base).sum(1).min()
        floor = 0.999 if variant == "fp16" else -1.0  # int8 of a random tiny model: reported only
        check(f"variant {variant}", lock["sha256"] == want and cos >= floor,
              f"{name} runs onnx/vision_model_{variant}.onnx (sha256 {want[:12]} as locked), min cos to fp32 {cos:.5f}")


def offline(server, env, work, photos):
    """After a pull, HF_HUB_OFFLINE=1 resolves a model on first use from the cache alone."""
    before = len(server.requests())
    off = dict(env, HF_HUB_OFFLINE="1")
    res = embtui(off, "--models-dir", os.path.join(work, "models-offline"), "--store", os.path.join(work, "store-off"),
                 "--device", "cpu", "export", "--model", "tiny-hub/dinov2", "--dataset", photos, "--out", os.path.join(work, "off.npy"))
    check("offline after a pull", res.returncode == 0 and len(server.requests()) == before,
          f"export --model tiny-hub/dinov2 with HF_HUB_OFFLINE=1 and an empty models folder: exit {res.returncode}, "
          f"{len(server.requests()) - before} requests")
    res = embtui(off, "--models-dir", os.path.join(work, "models-offline"), "models", "pull", "tiny-hub/never-pulled")
    check("offline without a pull", res.returncode == 2 and "HF_HUB_OFFLINE is set" in res.stderr and "models pull tiny-hub/never-pulled" in res.stderr,
          res.stderr.strip()[-160:])


def errors(server, env, work, repos):
    models = os.path.join(work, "models-err")
    cache = os.path.join(env["HF_HOME"], "hub")
    cases = [
        ("missing repo", "tiny-hub/nope", {}, ["was not found on", "HF_TOKEN"]),
        ("missing variant", "tiny-hub/vit-old-config:q4", {}, ["has no variant `q4`; it has: fp32", "--variant"]),
        ("missing processor config", "tiny-hub/no-preprocessor", {}, ["has no preprocessor_config.json", "--manifest"]),
        ("safetensors only", "tiny-hub/safetensors-only", {}, ["has no ONNX file", "just export-hf NAME --source tiny-hub/safetensors-only"]),
        ("gated without a token", "tiny-hub/gated", {}, ["gated or private", "HTTP 401", "set HF_TOKEN"]),
        ("gated with a wrong token", "tiny-hub/gated", {"HF_TOKEN": "hf_wrong"}, ["HTTP 403", "the token was refused"]),
        ("bad id", "tiny-hub/a/b", {}, ["is not a Hub model id"]),
    ]
    for name, repo, extra, wants in cases:
        res = embtui(dict(env, **extra), "--models-dir", models, "models", "pull", repo)
        whole, n = snapshots_whole(cache, repos)
        ok = res.returncode == 2 and all(w in res.stderr for w in wants) and whole
        check(f"error: {name}", ok, f"exit {res.returncode}: {res.stderr.strip()[-170:]}")
    res = embtui(dict(env, HF_TOKEN="hf_test_token"), "--models-dir", models, "models", "pull", "tiny-hub/gated")
    auth = [r for r in server.requests() if r["path"].startswith("/tiny-hub/gated/resolve/")]
    check("gated with HF_TOKEN", res.returncode == 0 and auth and auth[-1]["auth"], f"exit {res.returncode}, token sent")


def stalled_and_resumed(work, repos):
    cache = os.path.join(work, "hf-stall", "hub")
    env = dict(os.environ, HF_HOME=os.path.join(work, "hf-stall"), NO_COLOR="1")
    env.pop("HF_HUB_OFFLINE", None)
    models = os.path.join(work, "models-stall")
    data = "onnx/model.onnx_data"
    # A server that stops sending mid-file: embtui gives up after HF_HUB_DOWNLOAD_TIMEOUT.
    stall = Server(repos, os.path.join(work, "log-stall.jsonl"), "--stall", data)
    try:
        res = embtui(dict(env, HF_ENDPOINT=stall.url, HF_HUB_DOWNLOAD_TIMEOUT="2"), "--models-dir", models, "models", "pull", "tiny-hub/dinov2")
        whole, n = snapshots_whole(cache, repos)
        in_snapshot = os.path.exists(os.path.join(cache, "models--tiny-hub--dinov2", "snapshots"))
        partial = [f for f in os.listdir(os.path.join(cache, "models--tiny-hub--dinov2", "blobs")) if f.endswith(".part")]
        check("server stalls mid-file", res.returncode == 2 and "stalled" in res.stderr and "run the same command again to resume" in res.stderr
              and whole and partial, f"exit {res.returncode}: {res.stderr.strip()[-150:]}; {n} snapshot files whole, partial {partial[:1]}")
        shutil.rmtree(os.path.join(work, "hf-stall"))
        # Killed halfway: the server says when half was sent, the test kills embtui then.
        proc = subprocess.Popen([BINARY, "--models-dir", models, "models", "pull", "tiny-hub/dinov2"],
                                env=dict(env, HF_ENDPOINT=stall.url, HF_HUB_DOWNLOAD_TIMEOUT="600"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, _, at = stall.wait_for("stalled")
        blobs = os.path.join(cache, "models--tiny-hub--dinov2", "blobs")
        part = None
        while proc.poll() is None:  # until the first half has reached the partial file
            parts = [os.path.join(blobs, f) for f in os.listdir(blobs) if f.endswith(".part")] if os.path.isdir(blobs) else []
            if parts and os.path.getsize(parts[0]) >= int(at):
                part = parts[0]
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_size = os.path.getsize(part) if part else 0
        whole_after_kill, _ = snapshots_whole(cache, repos)
    finally:
        stall.stop()
    normal = Server(repos, os.path.join(work, "log-resume.jsonl"))
    try:
        res = embtui(dict(env, HF_ENDPOINT=normal.url), "--models-dir", models, "models", "pull", "tiny-hub/dinov2")
        ranges = [r["range"] for r in normal.requests() if r["path"].endswith(data) and r["method"] == "GET"]
        got = os.path.join(cache, "models--tiny-hub--dinov2", "snapshots")
        commit = os.listdir(got)[0] if os.path.isdir(got) else ""
        final = os.path.join(got, commit, data)
        same = os.path.exists(final) and sha256(final) == sha256(os.path.join(repos, "tiny-hub", "dinov2", data))
        check("download killed halfway resumes", res.returncode == 0 and whole_after_kill and killed_size > 0
              and f"bytes={killed_size}-" in ranges and same,
              f"killed at {killed_size} of {os.path.getsize(os.path.join(repos, 'tiny-hub', 'dinov2', data))} bytes; "
              f"resumed with Range {[r for r in ranges if r != 'bytes=0-0']}; sha256 {'equal' if same else 'DIFFERS'}; exit {res.returncode}")
    finally:
        normal.stop()


if __name__ == "__main__":
    main()
