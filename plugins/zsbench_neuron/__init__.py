"""Neuron method plugin for zsbench (Chen et al., CVPR 2025)."""
