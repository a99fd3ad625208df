"""Every model's hyper-parameters: one typed schema per model, bounds in ``Field``, defaults from the papers.

The schemas form a discriminated union on ``model`` (``ModelParams``), so a run config is validated
once, into the right class, and ``mmgef models NAME`` can print every key with its type, default
and description. This module imports no model code (and no torch): the config layer, the CLI help
and the docs read it without building anything.

One name per idea across models: ``proj_dim`` (size of projected content), ``edge_dropout``
(share of user–item edges pruned per epoch), ``cf_k`` (neighbours kept in a co-interaction graph),
``n_layers`` (user–item propagation layers). The names used before are accepted as aliases, so
configs of finished runs still load.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import AliasChoices, Field

from mmgef.graphs.cooccurrence import CooccurrenceWeight
from mmgef.schema import Strict, later_field

Modalities = Annotated[list[str] | None, Field(description="content modalities the model uses (None = every loaded one)")]
IdDim = Annotated[int, Field(gt=0, description="size of the user and item ID embeddings")]
KnnMethod = Annotated[Literal["auto", "exact", "faiss", "faiss-pca", "ivf-gemm"],
                      Field(description="kNN search: exact in row chunks, a FAISS inverted file, auto (FAISS above 50k "
                                        "items), faiss-pca (PCA to 64-d, IVF, exact re-rank), or ivf-gemm (k-means lists, "
                                        "each list scored against its nearest lists by one matrix product: for 1M items)")]

# the learned graph's rebuild (LATTICE and MM-GEF); added after runs existed, so at their defaults they leave digests alone
GraphRefresh = Annotated[Literal["full", "local"], Field(
    json_schema_extra={"added_later": True},
    description="full: every rebuild of the learned graph searches all items (the paper); local: between full searches "
                "each item's new neighbours are the best of its last ones, theirs, those that had it as a neighbour, its "
                "raw-content neighbours and k random items (one NN-descent round: linear in the items)")]
FullRefreshEvery = Annotated[int, Field(ge=1, json_schema_extra={"added_later": True},
                                        description="with graph_refresh=local: every n-th rebuild is a full search")]

def _alias(name: str, *old: str) -> AliasChoices:
    return AliasChoices(name, *old)


class ModelParamsBase(Strict):
    """What every model schema declares besides its keys, and the keys every model has."""

    description: ClassVar[str] = ""
    uses_content: ClassVar[bool] = True
    layered: ClassVar[bool] = False  # per-layer embeddings pooled into the final ones: MixGCF can mix them
    pretrains: ClassVar[bool] = False  # its final embeddings are exported as pretrained.safetensors
    new_item_scores: Literal["raw", "standardised", "standardised_unseen"] = later_field(
        "raw", description="raw: the dot product (every paper); standardised: each user's scores of items without "
                           "training interactions are mapped onto the mean and spread of their scores of trained "
                           "items, so new items compete on the same footing (in validation too; models/new_items.py); "
                           "standardised_unseen: the same, with the user's own training items (masked at ranking) "
                           "left out of the trained items' mean and spread")


class MFParams(ModelParamsBase):
    description: ClassVar[str] = "MF-BPR: user and item ID embeddings, dot product"
    uses_content: ClassVar[bool] = False
    model: Literal["mf"] = "mf"
    embedding_dim: IdDim = 64


class LightGCNParams(ModelParamsBase):
    description: ClassVar[str] = "LightGCN: layer mean of linear propagation over the user–item graph"
    uses_content: ClassVar[bool] = False
    layered: ClassVar[bool] = True
    model: Literal["lightgcn"] = "lightgcn"
    embedding_dim: IdDim = 64
    n_layers: int = Field(2, ge=0, description="propagation layers over the user–item graph")
    edge_dropout: float = later_field(0.0, ge=0.0, lt=1.0, validation_alias=_alias("edge_dropout", "dropout"),
                                      description="share of user–item edges pruned each epoch (∝ √(d_u d_i): "
                                                  "popular pairs first, FREEDOM's denoising); 0 = the full graph")


class NGCFParams(ModelParamsBase):
    description: ClassVar[str] = "NGCF: propagation with feature transforms and a bi-interaction term, layers concatenated"
    uses_content: ClassVar[bool] = False
    layered: ClassVar[bool] = True
    model: Literal["ngcf"] = "ngcf"
    embedding_dim: IdDim = 64
    n_layers: int = Field(3, ge=1, description="propagation layers over the user–item graph")
    mess_dropout: float = Field(0.1, ge=0, lt=1, description="dropout on each layer's messages")


class VBPRParams(ModelParamsBase):
    description: ClassVar[str] = "VBPR: item = ID embedding ⊕ linear projection of its content"
    model: Literal["vbpr"] = "vbpr"
    embedding_dim: int = Field(64, gt=0, description="size of the ID part and of the content part")
    modalities: Modalities = None


class CBParams(ModelParamsBase):
    description: ClassVar[str] = "content-based: cosine to the mean content of the user's training items (no training)"
    model: Literal["cb"] = "cb"
    modalities: Modalities = None


class ContentInitParams(ModelParamsBase):
    description: ClassVar[str] = ("content initialisation (the pre-training paper's CLIP baseline): item vectors from "
                                  "fused content, exported for --init (no training)")
    model: Literal["cinit"] = "cinit"
    pretrains: ClassVar[bool] = True
    embedding_dim: IdDim = 64
    users: Literal["random", "profile"] = Field("random", description="random: Xavier user vectors (the paper "
                                                "initialises items only); profile: mean of the user's items")
    modalities: Modalities = None


class LatticeParams(ModelParamsBase):
    description: ClassVar[str] = "LATTICE: learned per-modality item graphs on MF / NGCF / LightGCN"
    model: Literal["lattice"] = "lattice"
    backbone: Literal["mf", "ngcf", "lightgcn"] = Field("lightgcn", description="the CF model the item graph adds to")
    embedding_dim: IdDim = 64
    n_layers: int | None = Field(None, ge=0, validation_alias=_alias("n_layers", "backbone_layers"),
                                 description="backbone propagation layers (None = the backbone's default)")
    proj_dim: int = Field(64, gt=0, validation_alias=_alias("proj_dim", "feat_embed_dim"),
                          description="size of the projected features the learned graph is built from")
    knn_k: int = Field(10, gt=0, description="neighbours per item in each kNN graph")
    lambda_coeff: float = Field(0.9, ge=0.0, le=1.0, description="weight λ of the initial (raw-feature) graph")
    item_layers: int = Field(1, ge=1, description="convolutions over the item graph")
    rebuild_every: int = Field(1, ge=1, description="epochs between rebuilds of the learned graph")
    variant: Literal["lattice", "feats", "cf_feats"] = Field(
        "lattice", description="feats: convolve the projected content instead of IDs; cf_feats: add it with no graph")
    modalities: Modalities = None
    knn_method: KnnMethod = "auto"
    graph_refresh: GraphRefresh = "full"
    full_refresh_every: FullRefreshEvery = 10
    use_cf_graph: bool = later_field(False, description="add MM-GEF's co-occurrence graph E^c to the item graph with "
                                                        "equal weight (MM-GEF Table 2's 'LATTICE + CF'; not in LATTICE)")
    cf_k: int = later_field(10, gt=0, description="neighbours kept per item in E^c (with use_cf_graph)")


class MMGEFParams(ModelParamsBase):
    description: ClassVar[str] = "MM-GEF: early-fused content graph + co-occurrence graph by soft attention, on LightGCN"
    model: Literal["mmgef"] = "mmgef"
    embedding_dim: IdDim = 64
    n_layers: int = Field(2, ge=0, description="LightGCN layers")
    proj_dim: int = Field(64, gt=0, description="size of the projected fused content")
    knn_k: int = Field(10, gt=0, description="neighbours per item in the content graph E^m")
    cf_k: int = Field(10, gt=0, description="neighbours kept per item in the co-occurrence graph E^c")
    lambda_coeff: float = Field(0.9, ge=0.0, le=1.0, description="weight of the raw-feature kNN graph inside E^m")
    item_layers: int = Field(1, ge=1, description="convolutions over E^u")
    rebuild_every: int = Field(1, ge=1, description="epochs between rebuilds of the learned graph")
    modalities: Modalities = None
    use_cf_graph: bool = Field(True, description="merge E^c into E^u (false: the w/o CF ablation)")
    use_attention: bool = Field(True, description="learned attention weights (false: equal fixed weights)")
    attention: Literal["global", "item", "degree"] = Field(
        "global", description="global: one weight per graph; item: per item, from its ID embedding; degree: per item, "
                              "softmax(a + b·z) with z the item's standardised log training degree (MM-GEF+: cold and "
                              "tail items may lean on content, head items on co-occurrence)")
    modality_graphs: bool = Field(True, description="the attention also weighs each modality's own kNN graph, so "
                                  "w/o CF still has weights to learn (false: only E^m and E^c)")
    fusion: Literal["auto", "shared", "per_modality"] = Field(
        "auto", description="shared: average the vectors, one projection (only for one joint encoder's space, e.g. "
                            "CLIP image + text); per_modality: a projection each, then average; auto: shared when "
                            "the features' manifest names one joint encoder for all of them")
    cf_graph: Literal["topk", "all_pairs"] = Field(
        "topk", description="E^c: top cf_k co-occurring items per row, symmetrically normalised; all_pairs: every "
                            "co-occurring pair, C_ij / C_max, un-normalised (Eq. 3–4 as written)")
    cf_weight: CooccurrenceWeight = later_field(
        "count", description="E^c edge weight: count (the paper's C_ij), jaccard, shrunk (cosine of the user sets "
                             "× C/(C+cf_shrink)): confidence-aware E^c, so pairs seen once weigh less; or iuf "
                             "(Σ_u 1/|I_u|: a user with many items links each pair less)")
    cf_shrink: float = later_field(10.0, ge=0.0, description="β of cf_weight=shrunk")
    cf_min_count: int = later_field(1, ge=1, description="drop co-occurring pairs seen by fewer users")
    cf_crossfit: bool = later_field(
        False, description="in training, score each user with an E^c built from the other half of the users (two "
                           "halves drawn at random): E^c built from all users links a user's positive to the user's "
                           "own other items, which no held-out item enjoys, so training over-trusts it (MM-GEF+; "
                           "evaluation uses E^c from every user)")
    knn_method: KnnMethod = "auto"
    graph_refresh: GraphRefresh = "full"
    full_refresh_every: FullRefreshEvery = 10
    normalize_content: bool = later_field(
        True, description="L2-normalise each modality's item vectors before fusion and projection (true: the paper's "
                          "CLIP practice); false feeds the raw vectors to the projections, as LATTICE does")
    learned_graph: Literal["fused", "per_modality"] = later_field(
        "fused", description="fused: E^m's learned part is one kNN graph of the fused projection (the paper); "
                             "per_modality: one learned kNN graph per modality on its own projection, mixed by "
                             "softmax modality weights as LATTICE does (MM-GEF+; needs per-modality fusion)")
    initial_graph: Literal["fused", "per_modality"] = later_field(
        "fused", description="fused: E^m's initial part is one kNN graph of the raw items' mean per-modality cosine; "
                             "per_modality: one raw kNN graph per modality, each normalised, mixed by the modality "
                             "weights as LATTICE builds it (MM-GEF+)")
    normalize_h: bool = later_field(True, description="add h/‖h‖ (the paper); false adds h as FREEDOM does")
    h_gate: Literal["none", "global", "degree"] = later_field(
        "none", description="scale h by a learned gate 2σ(c) (global) or 2σ(c + d·z_i) with z_i the item's standardised "
                            "log degree (degree), starting at 1: the content branch can fade where it does not help "
                            "(MM-GEF+; none = the paper)")
    content_term: bool = later_field(
        False, description="also add a trainable projection of the item's content to its vector (VBPR's content "
                            "term): an item without interactions gets a vector learned from warm items' content "
                            "(MM-GEF+; false = the paper)")
    content_gate: Literal["none", "degree"] = later_field(
        "none", description="with content_term: scale the content term by 2σ(c + d·z_i), z_i the item's standardised "
                            "log degree, starting at 1, so head items can take less of it than tail and cold items "
                            "where content is weak (MM-GEF+)")
    content_norm: bool = later_field(
        False, description="with content_term: add the content term's item vectors L2-normalised, as LATTICE's "
                           "CF+feats adds its projected content, so the term has the same size for every item (MM-GEF+)")
    mix_on_valid: bool = later_field(
        False, description="train the mixing weights (the attention over E^u's graphs, the h and content gates) on the "
                           "validation pairs' BPR loss, one step after each training step, and not on the training "
                           "loss: held-out interactions set the mix, as they would choose a hyper-parameter (MM-GEF+)")
    edge_dropout: float = later_field(0.0, ge=0.0, lt=1.0, validation_alias=_alias("edge_dropout", "dropout"),
                                      description="FREEDOM's user–item edge pruning in the LightGCN part, "
                                                  "resampled each epoch (0 = off, the paper's model)")
    id_dropout: float = later_field(
        0.0, ge=0.0, lt=1.0, description="in training, each item's LightGCN (ID) part is replaced with this "
                                         "probability, re-drawn every batch, by the similarity-weighted mean of its "
                                         "raw-content neighbours' parts; items without training interactions always take "
                                         "their neighbours' (MM-GEF+, DropoutNet's idea; 0 = the paper)")


class MMGCNParams(ModelParamsBase):
    description: ClassVar[str] = "MMGCN: one user–item graph convolution per modality"
    model: Literal["mmgcn"] = "mmgcn"
    embedding_dim: int = Field(64, gt=0, description="size of the ID embeddings and of each branch")
    n_layers: int = Field(2, ge=1, description="layers of each modality's graph convolution")
    modalities: Modalities = None


class GRCNParams(ModelParamsBase):
    description: ClassVar[str] = "GRCN: user–item graph refined by content affinity and pruned"
    model: Literal["grcn"] = "grcn"
    embedding_dim: IdDim = 64
    proj_dim: int = Field(64, gt=0, validation_alias=_alias("proj_dim", "content_dim"),
                          description="size of each modality's projected content")
    n_layers: int = Field(2, ge=0, description="propagation layers over the refined graph")
    routing_iters: int = Field(3, ge=0, description="routing iterations that find each user's preference")
    fusion: Literal["max", "mean"] = Field("max", description="how modalities' edge affinities combine")
    edge_grad: bool = Field(False, description="back-propagate through the refined edge weights (≈10× slower "
                                              "epochs); off, the projections learn through the content channels")
    modalities: Modalities = None


class FreedomParams(ModelParamsBase):
    description: ClassVar[str] = "FREEDOM: frozen item kNN graph + degree-sensitive user–item edge pruning"
    model: Literal["freedom"] = "freedom"
    embedding_dim: IdDim = 64
    n_layers: int = Field(2, ge=0, description="user–item graph layers")
    item_layers: int = Field(1, ge=1, description="convolutions over the frozen item–item graph")
    knn_k: int = Field(10, gt=0, description="neighbours per item in each modality's kNN graph")
    image_weight: float = Field(0.1, ge=0.0, le=1.0, description="weight of the image graph when there is one")
    edge_dropout: float = Field(0.8, ge=0.0, lt=1.0, validation_alias=_alias("edge_dropout", "dropout"),
                                description="share of user–item edges pruned each epoch")
    mm_loss_weight: float = Field(1e-4, ge=0.0, description="weight of the per-modality projection BPR terms")
    modalities: Modalities = None


class PretrainParams(ModelParamsBase):
    description: ClassVar[str] = "multimodal contrastive pre-training (reviews + graphs + item modalities, CIMA + BCE)"
    pretrains: ClassVar[bool] = True
    model: Literal["mcpt"] = "mcpt"
    embedding_dim: int = Field(64, gt=0, description="size of every user and item vector")
    n_layers: int = Field(2, ge=0, description="LightGCN layers over each co-interaction graph")
    cf_k: int | None = Field(None, gt=0, validation_alias=_alias("cf_k", "graph_k"),
                             description="neighbours kept per user / item in the co-interaction graphs (None: every "
                                         "pair that shares a partner, as the paper builds G_u and G_i)")
    cima_weight: float = Field(0.5, ge=0, le=1, description="λ in λ·CIMA + (1 − λ)·BCE")
    temperature: float = Field(0.1, gt=0, description="τ of CIMA's scaled cosine")
    cima_loss: Literal["bce", "info_nce"] = Field("bce", description="bce: binary cross-entropy over the N×N "
                                                  "text–image pairs (Eq. 11); info_nce: softmax over each row and column")
    attention: Literal["relu", "tanh"] = Field("relu", description="inter-modal attention: softmax(ReLU(aᵀe′)) (Eq. 8, 14) "
                                               "or softmax(qᵀ tanh(W e′))")
    modalities: list[str] | None = Field(None, description="item modalities (None = all loaded); CIMA aligns the first two")
    review_modality: str = Field("review", description="user content used as the review-text branch")
    use_cima: bool = Field(True, description="contrastive text–image alignment term")
    use_graphs: bool = Field(True, description="propagate over the co-interaction graphs")
    use_reviews: bool = Field(True, description="the user review-text branch")


ModelParams = Annotated[
    MFParams | LightGCNParams | NGCFParams | VBPRParams | CBParams | ContentInitParams | LatticeParams | MMGEFParams
    | MMGCNParams | GRCNParams | FreedomParams | PretrainParams,
    Field(discriminator="model"),
]

MODEL_PARAMS: dict[str, type[ModelParamsBase]] = {
    cls.model_fields["model"].default: cls
    for cls in (MFParams, LightGCNParams, NGCFParams, VBPRParams, CBParams, ContentInitParams, LatticeParams,
                MMGEFParams, MMGCNParams, GRCNParams, FreedomParams, PretrainParams)
}


def params_class(name: str) -> type[ModelParamsBase]:
    from mmgef.errors import ConfigError

    if name not in MODEL_PARAMS:
        raise ConfigError(f"unknown model '{name}'. Fix: use one of {', '.join(MODEL_PARAMS)}, or a preset (see `mmgef models`).")
    return MODEL_PARAMS[name]


def param_keys(cls: type[ModelParamsBase]) -> set[str]:
    """Every key a model accepts: field names and their old aliases (not the ``model`` tag)."""
    keys = set()
    for name, f in cls.model_fields.items():
        if name == "model":
            continue
        keys.add(name)
        if isinstance(f.validation_alias, AliasChoices):
            keys.update(str(a) for a in f.validation_alias.choices)
    return keys


def later_defaults(cls: type[ModelParamsBase]) -> dict[str, Any]:
    """Keys marked as added later (``later_field``, or a type alias with the same marker) and their defaults (dropped
    from the digest at the default)."""
    return {k: f.default for k, f in cls.model_fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("added_later")}


def describe(cls: type[ModelParamsBase]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every key: what ``mmgef models NAME`` prints."""
    rows = []
    shared = list(ModelParamsBase.model_fields)  # the keys every model has come after the model's own
    for name in [n for n in cls.model_fields if n not in shared] + shared:
        f = cls.model_fields[name]
        if name == "model":
            continue
        rows.append((name, _type_name(f.annotation), repr(f.default), f.description or ""))
    return rows


def _type_name(annotation: Any) -> str:
    """``Literal['a', 'b']`` → ``a / b``; ``int | None`` → ``int or None`` (table-safe)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " / ".join(map(str, args))
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if args:
        return " or ".join(_type_name(a) for a in args)
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
