"""ReViSE baseline (Hubert Tsai et al., ICCV 2017) as the SynSE repository applies it to
skeleton features (zsbench plugin)."""
