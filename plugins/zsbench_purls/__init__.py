"""PURLS method plugin (Zhu et al., CVPR 2024): part-aware unified representation of
language and skeleton."""
