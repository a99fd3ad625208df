"""Propagation over any graph that can multiply: the one ``propagate`` every model uses."""

from __future__ import annotations

from typing import Literal, Protocol

import torch


class Graph(Protocol):
    def mm(self, x: torch.Tensor) -> torch.Tensor: ...


Pool = Literal["last", "mean", "stack"]


def propagate(graph: Graph, x: torch.Tensor, n_layers: int, pool: Pool = "last") -> torch.Tensor:
    """Apply ``graph`` ``n_layers`` times to ``x``.

    ``pool`` says what comes back: ``last`` = AᴸX (item-graph convolution in LATTICE, MM-GEF,
    FREEDOM); ``mean`` = mean of [X, AX, …, AᴸX] (LightGCN's layer combination); ``stack`` = the
    layers themselves, ``[n, L+1, d]`` (what MixGCF mixes).
    """
    if pool == "stack":
        layers = [x]
        for _ in range(n_layers):
            layers.append(graph.mm(layers[-1]))
        return torch.stack(layers, dim=1)
    # a running sum, not a stack: at a million nodes the [n, L+1, d] copy was 2 GB of the epoch's peak. The sum is
    # accumulated and scaled in place (autograd keeps nothing of it: additions and a constant scale need no saved
    # values), so one table holds it rather than one per layer.
    layer, total = x, None
    for _ in range(n_layers):
        layer = graph.mm(layer)
        if pool == "mean":
            total = x + layer if total is None else total.add_(layer)
    if pool == "last":
        return layer
    return x.clone() if total is None else total.div_(n_layers + 1)
