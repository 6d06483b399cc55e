"""TDSM method plugin for zsbench (Do & Kim, arXiv 2411.10745 / ICCV 2025)."""
