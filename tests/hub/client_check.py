"""Python's huggingface_hub against the stand-in (run by test_hub.py with HF_ENDPOINT and
HF_HOME set): prints one JSON object of what the client did."""
import hashlib
import json
import os
import sys

import huggingface_hub
from huggingface_hub import hf_hub_download, snapshot_download

try:
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError
except ImportError:  # huggingface_hub < 0.26
    from huggingface_hub.utils import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


repos = sys.argv[1]
out = {"version": huggingface_hub.__version__}
path = snapshot_download("tiny-hub/clip")
out["snapshot"] = os.path.basename(path)
out["ref_main"] = open(os.path.join(os.environ["HF_HOME"], "hub", "models--tiny-hub--clip", "refs", "main")).read()
out["equal"] = all(sha256(os.path.join(path, p)) == sha256(os.path.join(repos, "tiny-hub", "clip", p))
                   for p in ("onnx/vision_model.onnx", "tokenizer.json", "preprocessor_config.json"))
out["link"] = os.readlink(os.path.join(path, "onnx", "vision_model.onnx"))
one = hf_hub_download("tiny-hub/dinov2", "onnx/model.onnx_data")
out["one_equal"] = sha256(one) == sha256(os.path.join(repos, "tiny-hub", "dinov2", "onnx", "model.onnx_data"))
out["one_size"] = os.path.getsize(one)
raised = []
for repo, name, want in (("tiny-hub/nope", "config.json", RepositoryNotFoundError),
                         ("tiny-hub/clip", "nope.json", EntryNotFoundError),
                         ("tiny-hub/gated", "config.json", GatedRepoError)):
    try:
        hf_hub_download(repo, name)
        raised.append("nothing")
    except want:
        raised.append(want.__name__)
    except Exception as e:  # noqa: BLE001 - reported as the wrong error
        raised.append(type(e).__name__)
out["raised"] = raised
print(json.dumps(out))
