"""STAR (Chen et al., ACM MM 2024): side information and dual prompts for zero-shot
skeleton action recognition."""
