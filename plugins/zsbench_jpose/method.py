"""JPoSE on skeleton features, as ``jpose/zsl_fgar.py`` of the SynSE repository trains it:
a verb space and a noun space (cross-modal hinge + within-modality triplet each) and a joint
space over the concatenated part-of-speech embeddings (cross-modal hinge). ZSL score of
sample x and class c: cosine of the joint embeddings. GZSL: the core's calibrated stacking,
or the repository's gate with ``--set gzsl_rule=method``.

Verb and noun phrases come as two text kinds (``verb_kind``, ``noun_kind``; the
``synse_pos`` text source splits the labels). Samples whose classes share a verb (noun)
phrase form one group of the verb (noun) triplet loss, as the repository's index into the
distinct verbs (nouns)."""
from __future__ import annotations

import numpy as np
import torch

from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench_revise.shared import (gate_decide, label_columns, selection_rows, text_matrix,
                                   train_epochs, view_features)

from .config import JPoSEConfig
from .modules import JPoseNet


def phrase_groups(texts: ClassTexts, kind: str) -> np.ndarray:
    """(K,) group id per class: classes with the same phrase(s) of ``kind`` share an id
    (strings compared case- and space-insensitively; classes without strings are compared
    by their embeddings)."""
    keys: list[object] = []
    strings = texts.texts.get(kind)
    for i in range(len(texts)):
        if strings is not None and strings[i]:
            keys.append(tuple(" ".join(s.split()).casefold() for s in strings[i]))
        else:
            keys.append(np.asarray(texts.embeddings[kind][i], dtype=np.float32).tobytes())
    ids: dict[object, int] = {}
    return np.asarray([ids.setdefault(k, len(ids)) for k in keys], dtype=np.int64)


def text_hidden_width(setting: int | str | None, text_dim: int) -> int | None:
    if setting == "auto":
        return 512 if text_dim > 300 else None
    return setting  # type: ignore[return-value]


class JPoSE(Method):
    """Wray, Larlus, Csurka, Damen, "Fine-Grained Action Retrieval Through Multiple
    Parts-of-Speech Embeddings", ICCV 2019; skeleton version of the SynSE repository."""

    config: JPoSEConfig

    def __init__(self, config: JPoSEConfig) -> None:
        super().__init__(config)
        self.net: JPoseNet | None = None
        self.train_view: TrainView | None = None
        self.history: dict = {}
        self._device = torch.device("cpu")

    def _texts(self, texts: ClassTexts) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return (torch.from_numpy(text_matrix(texts, cfg.verb_kind, "JPoSE")),
                torch.from_numpy(text_matrix(texts, cfg.noun_kind, "JPoSE")))

    def _scores(self, x: torch.Tensor, verb: torch.Tensor, noun: torch.Tensor) -> torch.Tensor:
        assert self.net is not None
        with torch.no_grad():
            cj = self.net.text_embeddings(verb.to(self._device), noun.to(self._device))[2]
            out = [(self.net.visual_embeddings(c.to(self._device))[2] @ cj.T).cpu()
                   for c in x.split(self.config.test_batch_size)]
        return torch.cat(out)

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        x = torch.from_numpy(view_features(train, "JPoSE"))
        verb, noun = self._texts(train.texts)
        cols = label_columns(train.labels, train.texts.class_ids, "JPoSE")
        vgroup = torch.from_numpy(phrase_groups(train.texts, cfg.verb_kind))
        ngroup = torch.from_numpy(phrase_groups(train.texts, cfg.noun_kind))
        self.train_view = train
        self._device = device = torch.device(ctx.device)
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)

        rows, hold = selection_rows(train, cfg, ctx.seed + 3)
        fit_classes = torch.from_numpy(np.unique(cols[rows]))
        c = torch.from_numpy(cols[rows])
        x_fit = x[rows].to(device)
        s_rows = torch.searchsorted(fit_classes, c).to(device)   # each sample's class row
        s_vg, s_ng = vgroup[c].to(device), ngroup[c].to(device)
        c_verb, c_noun = verb[fit_classes].to(device), noun[fit_classes].to(device)

        hidden = {"verb": text_hidden_width(cfg.text_hidden, verb.shape[1]),
                  "noun": text_hidden_width(cfg.text_hidden, noun.shape[1])}
        self.net = net = JPoseNet(x.shape[1], {"verb": verb.shape[1], "noun": noun.shape[1]},
                                  cfg.embed_dim, cfg.joint_dim, hidden).to(device)
        opt = torch.optim.Adam([
            {"params": net.verb.parameters(), "weight_decay": 0.0},
            {"params": net.noun.parameters(), "weight_decay": 0.0},
            {"params": net.joint.parameters(), "weight_decay": cfg.joint_weight_decay}],
            lr=cfg.lr, foreach=True)

        def step(idx: torch.Tensor) -> torch.Tensor:
            return net.losses(x_fit[idx], s_rows[idx], s_vg[idx], s_ng[idx], c_verb, c_noun,
                              margin=cfg.margin, triplet_weight=cfg.triplet_weight,
                              all_pairs=cfg.triplet_all_pairs,
                              negatives=cfg.triplet_negatives)["total"]

        val_scores = val_labels = None
        if hold is not None:
            pos = torch.from_numpy(label_columns(hold.val_classes, train.texts.class_ids, "JPoSE"))
            x_val, val_labels = x[hold.val_rows], train.labels[hold.val_rows]

            def val_scores() -> np.ndarray:
                return self._scores(x_val, verb[pos], noun[pos]).numpy()

        self.history = train_epochs(net, opt, step, len(x_fit), epochs=cfg.epochs,
                                    batch_size=cfg.batch_size, gen=gen, ctx=ctx,
                                    desc=f"JPoSE {ctx.fold_name}".strip(), cfg=cfg, hold=hold,
                                    val_scores=val_scores, val_labels=val_labels,
                                    early_stop=cfg.early_stop)
        ctx.details["jpose"] = {**self.history, "verb_groups": int(vgroup.max()) + 1,
                                "noun_groups": int(ngroup.max()) + 1}

    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        if self.net is None:
            raise ZsbenchError("JPoSE: score() called before fit()")
        verb, noun = self._texts(candidates)
        return self._scores(torch.from_numpy(view_features(test, "JPoSE")), verb, noun).numpy()

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        return gate_decide(self, self.train_view, scores, seen_mask, test, candidates, ctx,
                           self.config, "JPoSE")
