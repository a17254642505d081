"""babyterm: a baby language model that lives in your terminal and learns from your writing."""

__version__ = "0.1.0"
