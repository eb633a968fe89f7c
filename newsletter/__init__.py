"""newsletter: Hugging Face Daily Papers dumps in, one personal research digest per subscriber out."""

__version__ = "0.1.0"
