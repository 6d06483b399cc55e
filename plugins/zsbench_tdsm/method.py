"""TDSM: a text-conditioned DDPM denoiser over frozen skeleton features, trained with the
epsilon-prediction loss plus a triplet diffusion loss; classes are matched at test time by
the smallest noise-prediction error (official train.py / model/dit.py)."""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor
from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench.nn.selection import BestEpoch

from .config import TDSMConfig
from .modules import NoiseSchedule, TDSMDenoiser, cosine_warmup_factor, per_sample_error, tdsm_loss


class ClipTokenStates:
    """Token-level CLIP text features as the official code builds them: tokenizer with
    padding to ``max_length``, HF ``CLIPTextModel`` last hidden states (max_length rows) with
    the pooled (EOS) state appended as one more row -> (max_length + 1, width)."""

    def __init__(self, model: str, subfolder: str | None, max_length: int, device: str) -> None:
        try:
            from transformers import CLIPTextModel, CLIPTokenizer
        except ImportError as e:  # pragma: no cover - transformers ships with the venv
            raise ZsbenchError("TDSM text_features=tokens needs the `transformers` package") from e
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        tok_sub = "tokenizer" if subfolder else None
        try:
            self.tokenizer = CLIPTokenizer.from_pretrained(model, subfolder=tok_sub,
                                                           local_files_only=offline)
            self.model = CLIPTextModel.from_pretrained(model, subfolder=subfolder,
                                                       local_files_only=offline).to(device).eval()
        except (OSError, ValueError) as e:
            raise ZsbenchError(
                f"TDSM: cannot load the CLIP text tower {model!r} (subfolder {subfolder!r}): "
                f"{e}. Download it into the Hugging Face cache (or give a local folder as "
                f"method.text_model), or run with --set method.text_features=pooled to use "
                f"the run's text-encoder embeddings instead") from e
        self.max_length, self.device = max_length, device
        self.cache: dict[str, Tensor] = {}

    @torch.no_grad()
    def __call__(self, text: str) -> Tensor:
        if text not in self.cache:
            ids = self.tokenizer(text, padding="max_length", max_length=self.max_length,
                                 truncation=True, return_tensors="pt").input_ids.to(self.device)
            out = self.model(ids)
            self.cache[text] = torch.cat([out.last_hidden_state[0], out.pooler_output],
                                         dim=0).float().cpu()
        return self.cache[text]


class TDSM(Method):
    """Do & Kim, "TDSM: Triplet Diffusion for Skeleton-Text Matching in Zero-Shot Action
    Recognition", arXiv 2411.10745 (ICCV 2025 title: "Bridging the Skeleton-Text Modality
    Gap: Diffusion-Powered Modality Alignment for Zero-shot Skeleton-based Action
    Recognition")."""

    config: TDSMConfig

    def __init__(self, config: TDSMConfig) -> None:
        super().__init__(config)
        self.net: TDSMDenoiser | None = None
        self.schedule = NoiseSchedule(config.num_steps, config.beta_start, config.beta_end,
                                      config.beta_schedule)
        self.history: list[float] = []
        self._device = torch.device("cpu")
        self._tokens: ClipTokenStates | None = None
        self._cond_shape: tuple[int, int] | None = None

    # ------------------------------------------------------------------ text conditioning
    def conditioning(self, texts: ClassTexts) -> tuple[Tensor, Tensor]:
        """(z_g (K, C), z_l (K, M_l, C)) for the classes of ``texts``, kinds concatenated
        along channels in ``text_kinds`` order."""
        cfg = self.config
        missing = [k for k in cfg.text_kinds if k not in texts.embeddings]
        if missing:
            raise ZsbenchError(f"TDSM: text kinds {missing} not loaded (have {texts.kinds}); "
                               f"set method.text_kinds or give the run these text sources")
        if cfg.text_features == "pooled":
            z_g = torch.cat([torch.as_tensor(texts.matrix(k)) for k in cfg.text_kinds], dim=1)
            z_l = z_g[:, None]
        else:
            if self._tokens is None:
                self._tokens = ClipTokenStates(cfg.text_model, cfg.text_subfolder,
                                               cfg.max_tokens, str(self._device))
            per_kind = []
            for kind in cfg.text_kinds:
                rows = []
                for i, strings in enumerate(texts.texts.get(kind, [])):
                    if not strings:
                        raise ZsbenchError(f"TDSM: class {int(texts.class_ids[i])} has no "
                                           f"{kind!r} text")
                    rows.append(torch.stack([self._tokens(s) for s in strings]).mean(0))
                per_kind.append(torch.stack(rows))
            full = torch.cat(per_kind, dim=-1)
            z_g, z_l = full[:, -1], full[:, :-1]
        shape = (z_l.shape[1], z_l.shape[2])
        if self._cond_shape is not None and shape != self._cond_shape:
            raise ZsbenchError(f"TDSM: candidate text conditioning {shape} differs from the "
                               f"training one {self._cond_shape}: use one text encoder")
        return z_g.float().to(self._device), z_l.float().to(self._device)

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if train.kind != "features":
            raise ZsbenchError("TDSM works on frozen pretrained skeleton features "
                               f"(inputs='features'); got {train.kind!r}")
        x = torch.as_tensor(np.asarray(train.x, dtype=np.float32))
        if x.ndim != 2 or len(x) == 0:
            raise ZsbenchError(f"TDSM: training features must be a non-empty (N, D) array, "
                               f"got {tuple(x.shape)}")
        self._device = device = torch.device(ctx.device)
        self._cond_shape = None
        z_g, z_l = self.conditioning(train.texts)
        self._cond_shape = (z_l.shape[1], z_l.shape[2])
        pos = {int(c): i for i, c in enumerate(train.texts.class_ids)}
        missing = sorted({int(c) for c in train.labels} - set(pos))
        if missing:
            raise ZsbenchError(f"TDSM: training labels {missing} have no class texts")
        rows = torch.as_tensor([pos[int(c)] for c in train.labels], dtype=torch.long)
        n_cls = len(train.texts.class_ids)

        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        self.net = net = TDSMDenoiser(x.shape[1], z_l.shape[2], cfg.hidden_size, cfg.depth,
                                      cfg.num_heads, cfg.mlp_ratio, z_l.shape[1]).to(device)
        # the per-parameter loop: the multi-tensor update (bit for bit the same) made the
        # embedded run slower here (21.4 against 19.4 s, paired runs; docs/performance.md)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                foreach=False)
        bs = min(cfg.batch_size, len(x))
        per_epoch = len(x) // bs
        steps = (cfg.iters // per_epoch + 1) * per_epoch if cfg.whole_epochs else cfg.iters
        epochs = -(-steps // per_epoch)
        sched, kind = self.schedule, cfg.prediction_type
        self.history, step, last = [], 0, (0.0, 0.0)
        net.train()
        best = BestEpoch(ctx, net)        # active only under model_selection=best_on_test
        for epoch in ctx.progress(range(epochs), desc="TDSM training", total=epochs):
            total = 0.0
            order = torch.randperm(len(x), generator=gen)
            for b in range(per_epoch):
                if step >= steps:
                    break
                idx = order[b * bs:(b + 1) * bs]
                x0 = x[idx][:, None].to(device)
                eps = torch.randn(x0.shape, generator=gen).to(device)
                t = torch.randint(0, cfg.num_steps, (bs,), generator=gen).to(device)
                neg = torch.randint(0, n_cls, (bs,), generator=gen).to(device)
                p = rows[idx].to(device)
                x_t = sched.add_noise(x0, eps, t)
                target = sched.target(kind, x0, eps, t)
                if cfg.use_triplet_loss:
                    pred = net(torch.cat([x_t, x_t]), torch.cat([t, t]),
                               torch.cat([z_g[p], z_g[neg]]), torch.cat([z_l[p], z_l[neg]]))
                    _, l_diff, l_td = tdsm_loss(pred[:bs], pred[bs:], target, neg != p,
                                                cfg.margin, cfg.d_weight, cfg.t_weight,
                                                cfg.loss_form)
                else:
                    e_p = per_sample_error(net(x_t, t, z_g[p], z_l[p]), target, cfg.loss_form)
                    l_diff, l_td = e_p.mean() * cfg.d_weight, e_p.new_zeros(())
                loss = (l_diff if cfg.use_diff_loss else 0.0) + l_td
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * cosine_warmup_factor(step, cfg.warmup, cfg.iters)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                total += float(loss.detach())
                last = (float(l_diff.detach()), float(l_td.detach()))
            self.history.append(total / per_epoch)
            best.after_epoch(epoch)
        best.restore()
        net.eval()
        n_par = sum(p.numel() for p in net.parameters())
        ctx.details.update({"tdsm_steps": step, "tdsm_batch_size": bs, "tdsm_epochs": epochs,
                            "tdsm_parameters": n_par, "tdsm_final_loss": self.history[-1],
                            "tdsm_final_diff_loss": last[0], "tdsm_final_triplet_loss": last[1],
                            "tdsm_cond_shape": list(self._cond_shape)})
        ctx.log(f"TDSM: {step} steps (batch {bs}), {n_par} parameters, final loss "
                f"{self.history[-1]:.4f}")

    # ------------------------------------------------------------------ inference
    def test_noises(self, dim: int, seed: int) -> Tensor:
        """(noise_draws, num_noise, dim) fixed test noises; draw 0 = torch.randn(J, 1, 1,
        dim) right after seeding (the official draw for seed = its seed)."""
        cfg = self.config
        gen = torch.Generator().manual_seed(seed)
        return torch.stack([torch.randn(cfg.num_noise, 1, 1, dim, generator=gen).reshape(
            cfg.num_noise, dim) for _ in range(cfg.noise_draws)])

    @torch.no_grad()
    def matching_errors(self, x: Tensor, noises: Tensor, g: Tensor, l: Tensor) -> Tensor:
        """s[i, k] = mean over draws of sum_j e(T(x_t^(j), t_test, text_k), target_j), with
        x_t^(j) = q(x_t | x_i) at t_test with noise j; ``g``, ``l`` = embed_text per class."""
        assert self.net is not None
        cfg, sched = self.config, self.schedule
        n, k = len(x), len(g)
        d, j = noises.shape[:2]
        x0 = x[:, None, None, :].expand(n, d, j, x.shape[1]).reshape(-1, 1, x.shape[1])
        eps = noises[None].expand(n, d, j, x.shape[1]).reshape(-1, 1, x.shape[1])
        t = torch.full((len(x0),), cfg.t_test, dtype=torch.long, device=x.device)
        x_t, target = sched.add_noise(x0, eps, t), sched.target(cfg.prediction_type, x0, eps, t)
        # rows = (sample, draw, noise) x class
        r = torch.arange(len(x0) * k, device=x.device)
        err = torch.empty(len(r), device=x.device)
        for s in range(0, len(r), cfg.chunk_size):
            rr = r[s:s + cfg.chunk_size]
            a, c = rr // k, rr % k
            pred = self.net.forward_embedded(x_t[a], t[a].float(), g[c], l[c])
            err[s:s + len(rr)] = per_sample_error(pred, target[a], cfg.loss_form)
        return err.reshape(n, d, j, k).sum(2).mean(1)

    @torch.no_grad()
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """Score of sample i for candidate k = minus its noise-prediction error s[i, k]."""
        if self.net is None:
            raise ZsbenchError("TDSM: score() called before fit()")
        if test.kind != "features":
            raise ZsbenchError(f"TDSM scores features, got {test.kind!r}")
        cfg, net = self.config, self.net.eval()
        z_g, z_l = self.conditioning(candidates)
        g, l = net.embed_text(z_g, z_l)
        x = np.asarray(test.x, dtype=np.float32)
        seed = cfg.noise_seed if cfg.noise_seed is not None else ctx.seed
        noises = self.test_noises(x.shape[1], seed).to(self._device)
        out = []
        batches = range(0, len(x), cfg.test_batch_size)
        for i in ctx.progress(batches, desc="TDSM scoring", total=len(batches)):
            xb = torch.from_numpy(x[i:i + cfg.test_batch_size]).to(self._device)
            out.append(-self.matching_errors(xb, noises, g, l).cpu())
        ctx.details.update({"tdsm_noise_seed": seed, "tdsm_test_forwards_per_sample":
                            cfg.noise_draws * cfg.num_noise * len(candidates)})
        return torch.cat(out).numpy() if out else np.zeros((0, len(candidates)), np.float32)
