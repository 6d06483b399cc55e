"""Split definitions (data only); installed as zsbench._splits."""
