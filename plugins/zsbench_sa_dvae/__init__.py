"""SA-DVAE (Li et al., ECCV 2024) as a zsbench plugin."""
