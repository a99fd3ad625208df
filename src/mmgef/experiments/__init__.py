"""Experiments: models × variants × datasets × seeds × grids, selected on validation, reported."""
