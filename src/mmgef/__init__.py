"""mmgef: multimodal recommendation with graph early fusion (MM-GEF), LATTICE and baselines."""

__version__ = "0.1.0"
