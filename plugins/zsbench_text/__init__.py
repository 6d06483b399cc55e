"""Built-in text sources (class names and the description files of the papers) and text
encoders (Sentence-BERT, CLIP) for zsbench. See docs/text.md."""
