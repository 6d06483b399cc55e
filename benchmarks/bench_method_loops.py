"""Inner loops of the slowest embedded runs, product against the straightforward version
measured in the same run (issue 15, target 3).

    python benchmarks/bench_method_loops.py [--threads 2] [--repeat 3] [--iterations 1700]

* ``vae``: one 1,700-iteration cycle of the cross-aligned VAE (CADA-VAE's sizes: 256-d
  skeleton features, 384-d text, latent 100; MSF's: 1,152-d fused text) with the skeleton
  scripts' warm-up schedule. Baseline: every loss term built and weighted each iteration,
  zero factors included (the previous loop); product: ``loss_terms(..., factors=f)``,
  which skips the terms whose factor is 0, then ``total(f)``. The final parameters must be
  equal bit for bit.
* ``mmd``: ReViSE's Gaussian-kernel MMD, forward and backward, at the embedded run's batch
  shapes (681 and 462 rows of 100-d codes). Baseline: float32 ``cdist`` squared (the
  previous implementation); product: :func:`zsbench_revise.modules.gaussian_mmd` (float64
  product form). Both gradients are compared with the official broadcast formula in
  float64 (on 200 rows: that formula builds a (2B, 2B, D) tensor).

Rounds alternate baseline and product; the ratio is baseline / product of the medians.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from zsbench.cpu import tune_allocator
from zsbench.nn.vae import CrossAlignedVAE, cycle_warmup
from zsbench_revise.modules import gaussian_mmd


def all_terms_total(terms, f) -> torch.Tensor:
    """The previous weighting: every term added, those with factor 0 multiplied by 0."""
    loss = terms.recon_skeleton + sum(terms.recon_text.values())
    loss = loss + f.beta_skeleton * terms.kl_skeleton + f.beta_text * sum(terms.kl_text.values())
    loss = loss + f.cross * (terms.cross_skeleton + sum(terms.cross_text.values()))
    if f.align:
        loss = loss + f.align * sum(terms.align.values())
    return loss


def vae_cycle(text_dim: int, weighted: bool, iterations: int) -> tuple[float, torch.Tensor]:
    """Seconds per iteration and the final parameters of one training segment."""
    data = torch.Generator().manual_seed(0)
    n, classes = 1500, 35
    x = torch.rand(n, 256, generator=data)
    rows = torch.nn.functional.normalize(torch.randn(classes, text_dim, generator=data), dim=1)
    col = torch.randint(0, classes, (n,), generator=data)
    torch.manual_seed(1)
    vae = CrossAlignedVAE(256, {"text": text_dim}, 100)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4, foreach=True)
    gen = torch.Generator().manual_seed(2)
    vae.train()
    t0 = time.perf_counter()
    for it in range(iterations):
        idx = torch.randperm(n, generator=gen)[:64]
        f = cycle_warmup(it, 1700, "cada_vae")
        texts = {"text": rows[col[idx]]}
        loss = (vae.loss_terms(x[idx], texts, gen, f).total(f) if weighted
                else all_terms_total(vae.loss_terms(x[idx], texts, gen), f))
        opt.zero_grad()
        loss.backward()
        opt.step()
    sec = (time.perf_counter() - t0) / iterations
    return sec, torch.cat([p.detach().reshape(-1) for p in vae.parameters()])


def cdist_mmd(a: torch.Tensor, b: torch.Tensor, k: float = 32.0) -> torch.Tensor:
    """The previous implementation: float32 cdist without the matrix-product shortcut."""
    z = torch.cat([a, b])
    sq = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
    kern = torch.exp(-k * sq)
    n = a.shape[0]
    return (kern[:n, :n] + kern[n:, n:] - kern[:n, n:] - kern[n:, :n]).mean()


def official_mmd(a: torch.Tensor, b: torch.Tensor, k: float = 32.0) -> torch.Tensor:
    """The repository's MMDLoss formula (broadcast differences), for the exact reference."""
    z = torch.cat([a, b])
    sq = ((z.unsqueeze(0) - z.unsqueeze(1)) ** 2).sum(2)
    kern = torch.exp(-k * sq)
    n = a.shape[0]
    return (kern[:n, :n] + kern[n:, n:] - kern[:n, n:] - kern[n:, :n]).mean()


def mmd_inputs(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(rows)
    a = torch.relu(torch.randn(rows, 100, generator=g)) * 0.1      # ReLU codes, near pairs
    return a, a + 0.01 * torch.randn(rows, 100, generator=g)


def mmd_time(fn, rows: int, reps: int = 10) -> float:
    a0, b0 = mmd_inputs(rows)
    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    fn(a, b).backward()                        # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        a.grad = b.grad = None
        fn(a, b).backward()
    return (time.perf_counter() - t0) / reps


def mmd_gradient_error(fn, rows: int = 200) -> float:
    """max |grad - exact| / max |exact| for the first batch (exact: official formula, float64;
    its (2B, 2B, D) tensor limits the rows: 200 -> 128 MB)."""
    a0, b0 = mmd_inputs(rows)
    ref = a0.double().requires_grad_()
    official_mmd(ref, b0.double()).backward()
    a = a0.clone().requires_grad_()
    fn(a, b0).backward()
    return float((a.grad.double() - ref.grad).abs().max() / ref.grad.abs().max())


def ratio_line(name: str, base: list[float], prod: list[float], unit: float, label: str) -> str:
    b, p = statistics.median(base), statistics.median(prod)
    return (f"{name:<28} baseline {b * unit:8.2f} {label}   product {p * unit:8.2f} {label}   "
            f"ratio {b / p:5.2f}x (min {min(x / y for x, y in zip(base, prod)):.2f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=1700,
                    help="VAE iterations per round (1,700 = one cycle of the schedule)")
    ap.add_argument("--mmd-reps", type=int, default=10, help="MMD passes timed per round")
    ap.add_argument("--tasks", default="vae,mmd")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tune_allocator()
    tasks = args.tasks.split(",")
    print(f"torch {torch.__version__}, {args.threads} threads, {args.repeat} rounds")
    if "vae" in tasks:
        for label, dim in (("CADA-VAE sizes (text 384)", 384), ("MSF sizes (text 1152)", 1152)):
            base, prod, same = [], [], True
            for _ in range(args.repeat):
                tb, pb = vae_cycle(dim, False, args.iterations)
                tp, pp = vae_cycle(dim, True, args.iterations)
                base.append(tb)
                prod.append(tp)
                same = same and torch.equal(pb, pp)
            print(ratio_line(label, base, prod, 1e3, "ms/it"),
                  f"  parameters bit for bit: {'yes' if same else 'NO'}")
    if "mmd" in tasks:
        for rows in (681, 462):
            base, prod = [], []
            for _ in range(args.repeat):
                base.append(mmd_time(cdist_mmd, rows, args.mmd_reps))
                prod.append(mmd_time(gaussian_mmd, rows, args.mmd_reps))
            print(ratio_line(f"ReViSE MMD {rows} x 100", base, prod, 1e3, "ms"),
                  f"  gradient error vs exact (200 rows): baseline {mmd_gradient_error(cdist_mmd):.1e},"
                  f" product {mmd_gradient_error(gaussian_mmd):.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
