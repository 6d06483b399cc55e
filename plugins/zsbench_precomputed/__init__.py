"""Pre-extracted skeleton features as a "skeleton encoder" (zsbench plugin)."""
