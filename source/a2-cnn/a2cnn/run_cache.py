"""Resumable notebook runs: each finished training call is kept on disk, keyed by everything it depends on.

Active only when ``A2_RUN_CACHE`` names a folder (``python -m coursetools solve`` sets it, so that a long solution
run stopped half-way resumes where it stopped). A training call whose key is there returns the kept result and
loads the kept weights into the model instead of training again; the key covers the model's class and initial
weights and buffers, the data, the settings and the device, so a kept run is only reused for exactly the same
call. Weights are kept as safetensors and results as JSON: nothing is unpickled.
"""
import hashlib
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import settings


def _feed(digest, part):
    if isinstance(part, torch.Tensor):
        digest.update(f"T{part.dtype}{tuple(part.shape)}".encode())
        tensor = part.detach().cpu().contiguous().reshape(-1)  # 0-d tensors (BatchNorm counters) too
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(part, np.ndarray):
        array = np.ascontiguousarray(part)
        digest.update(f"A{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    elif isinstance(part, dict):
        digest.update(b"{")
        for key in sorted(part, key=str):
            _feed(digest, str(key))
            _feed(digest, part[key])
        digest.update(b"}")
    elif isinstance(part, (list, tuple)):
        digest.update(b"[")
        for item in part:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(f"{type(part).__name__}:{part!r};".encode())


def key(*parts):
    """Hex digest of ``parts`` (tensors, arrays, dicts, lists and plain values, compared by content)."""
    digest = hashlib.sha256()
    for part in parts:
        _feed(digest, part)
    return digest.hexdigest()[:32]


def model_state(model):
    """What a model starts from: its class and every parameter and buffer."""
    return [f"{type(model).__module__}.{type(model).__qualname__}", model.state_dict()]


def load(run_key, model):
    """The kept result of ``run_key`` with its weights loaded into ``model``, or None (no cache, or not kept)."""
    folder = settings.run_cache_dir()
    if folder is None or run_key is None:
        return None
    meta, weights = folder / f"{run_key}.json", folder / f"{run_key}.safetensors"
    if not (meta.is_file() and weights.is_file()):
        return None
    model.load_state_dict(load_file(weights, device="cpu"))
    return json.loads(meta.read_text())["result"]


def save(run_key, model, result, what=""):
    """Keep ``model``'s weights and ``result`` (JSON-ready) under ``run_key``; nothing when there is no cache.
    The JSON is written last, so a run stopped while writing is simply not kept."""
    folder = settings.run_cache_dir()
    if folder is None or run_key is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().clone().contiguous() for name, tensor in model.state_dict().items()}
    for path, write in ((folder / f"{run_key}.safetensors", lambda p: save_file(state, str(p))),
                        (folder / f"{run_key}.json", lambda p: p.write_text(json.dumps({"what": what, "result": result})))):
        tmp = path.with_name(f".{path.name}.tmp")
        write(tmp)
        os.replace(tmp, path)
