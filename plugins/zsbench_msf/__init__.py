"""MSF (Multi-Semantic Fusion, Li et al. ICIG 2023) as a zsbench plugin."""
