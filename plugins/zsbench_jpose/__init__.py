"""JPoSE baseline (Wray et al., ICCV 2019: part-of-speech embedding spaces) as the SynSE
repository applies it to skeleton features (zsbench plugin)."""
