"""Built-in evaluation protocols: synse, smie, star, purls, one_shot, cross_dataset, sa_dvae.

Each protocol turns class splits (the dataset's own ``builtin_splits`` for the embedded
benchmark, ``splits/<family>.json`` for NTU-60/120 and PKU-MMD) and a sample rule into
``zsbench.Fold`` objects. See docs/protocols.md.
"""
