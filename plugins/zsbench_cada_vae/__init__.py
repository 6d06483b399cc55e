"""CADA-VAE (skeleton re-implementation of the SynSE repository) as a zsbench plugin."""
