"""Datasets: readers for the MMRec, LATTICE-json and native layouts, splits, the synthetic default."""

from mmgef.data.dataset import Dataset
from mmgef.data.split import Split, make_split

__all__ = ["Dataset", "Split", "make_split"]
