"""DeViSE baseline for zero-shot skeleton action recognition (zsbench plugin)."""
