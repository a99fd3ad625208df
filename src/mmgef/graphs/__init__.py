"""Graph construction and sparse propagation shared by every graph model."""
