"""Recommenders sharing one surface (see base.Recommender); build them via registry.build_model."""
