"""RelationNet baseline (Sung et al., CVPR 2018, zero-shot variant) on skeleton features
(zsbench plugin; built from the original method, no skeleton code exists)."""
