"""Full-ranking evaluation: metrics on a hit matrix and a batched evaluator."""
