"""LATTICE and MM-GEF: gradients, ablation switches, backbones, variants, bad parameters."""

import numpy as np
import pytest
import torch

from mmgef.data.split import make_split
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.errors import ConfigError
from mmgef.models.base import Batch, ModelContext
from tests.helpers import make_model


@pytest.fixture(scope="module")
def ctx() -> ModelContext:
    ds = generate(SyntheticConfig(n_users=150, n_items=100, seed=4))
    return ModelContext(ds.n_users, ds.n_items, make_split(ds, "random", 0).train, ds.content)


def _batch(ctx) -> Batch:
    coo = ctx.train.tocoo()
    g = torch.Generator().manual_seed(0)
    return Batch(torch.as_tensor(coo.row[:256]), torch.as_tensor(coo.col[:256]), torch.randint(0, ctx.n_items, (256,), generator=g))


def _item_vectors(name, params, ctx, seed=0):
    torch.manual_seed(seed)
    model = make_model(name, params, ctx)
    model.eval()
    return model, model.scores(torch.arange(10))


@pytest.mark.parametrize("name", ["lattice", "mmgef"])
def test_rebuild_batch_trains_the_projection_and_later_batches_do_not(ctx, name):
    torch.manual_seed(0)
    model = make_model(name, {}, ctx)
    model.train()
    model.on_epoch_start(0)
    proj = model.proj_m["image"] if name == "mmgef" else model.proj["image"]
    model.loss(_batch(ctx)).backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
    proj.weight.grad = None
    model.loss(_batch(ctx)).backward()  # frozen graph: no gradient into the projection
    assert proj.weight.grad is None or proj.weight.grad.abs().sum() == 0


@pytest.mark.parametrize("name", ["lattice", "mmgef"])
def test_local_refresh_searches_all_items_only_every_nth_rebuild(ctx, name, monkeypatch):
    """graph_refresh=local: after the build's full search, rebuilds re-rank local candidates except every
    full_refresh_every-th; a loaded model's next rebuild searches everything (its lists are gone)."""
    import mmgef.graphs.learned as learned

    calls = []
    for fn in ("knn_indices", "refine_topk"):
        original = getattr(learned, fn)
        monkeypatch.setattr(learned, fn, lambda *a, _f=original, _n=fn, **k: calls.append(_n) or _f(*a, **k))
    torch.manual_seed(0)
    model = make_model(name, {"graph_refresh": "local", "full_refresh_every": 3}, ctx)
    n_graphs = 2 if name == "lattice" else 1  # learned graphs per rebuild (LATTICE: one per modality)
    model.train()
    pattern = []
    for epoch in range(1, 7):
        calls.clear()
        model.on_epoch_start(epoch)
        model.loss(_batch(ctx)).backward()
        assert len(calls) == n_graphs and len(set(calls)) == 1
        pattern.append("full" if calls[0] == "knn_indices" else "local")
    assert pattern == ["local", "local", "full", "local", "local", "full"]
    model.load_state_dict(model.state_dict())
    calls.clear()
    model.on_epoch_start(7)
    model.loss(_batch(ctx)).backward()
    assert calls == ["knn_indices"] * n_graphs
    full = make_model(name, {}, ctx)  # the default: every rebuild is a full search
    full.train()
    calls.clear()
    for epoch in range(1, 4):
        full.on_epoch_start(epoch)
        full.loss(_batch(ctx)).backward()
    assert calls == ["knn_indices"] * (3 * n_graphs)


def test_mmgef_ablation_switches_change_the_computation(ctx):
    variants = {"full": {}, "w/o CF": {"use_cf_graph": False}, "w/o Att": {"use_attention": False},
                "w/o CF+Att": {"use_cf_graph": False, "use_attention": False}}
    models = {name: _item_vectors("mmgef", params, ctx)[0] for name, params in variants.items()}
    assert models["full"].cf_graph is not None and models["w/o CF"].cf_graph is None
    # E^m, the image graph, the text graph (+ E^c): fixed equal weights without attention
    assert torch.allclose(models["w/o Att"].attention_weights(), torch.full((4,), 0.25))
    assert torch.allclose(models["w/o CF+Att"].attention_weights(), torch.full((3,), 1 / 3))
    with torch.no_grad():  # attention logits as training would leave them; ignored by the w/o Att rows
        for model in models.values():
            model.att_global.copy_(torch.linspace(2.0, -1.0, model.att_global.numel()))
    scores = {}
    for name, model in models.items():
        model.train()
        model.eval()
        scores[name] = model.scores(torch.arange(10))
    names = list(scores)
    for i, a in enumerate(names):  # the paper's four ablation rows are four different models
        for b in names[i + 1:]:
            assert not torch.allclose(scores[a], scores[b], atol=1e-6), (a, b)


def test_mmgef_without_modality_graphs_has_nothing_to_weigh_without_cf(ctx):
    _, no_cf = _item_vectors("mmgef", {"use_cf_graph": False, "modality_graphs": False}, ctx)
    _, neither = _item_vectors("mmgef", {"use_cf_graph": False, "use_attention": False, "modality_graphs": False}, ctx)
    assert torch.allclose(no_cf, neither)  # one graph: the old {E^m, E^c} attention made these one model


def test_mmgef_fusion_is_per_modality_unless_a_joint_encoder_made_the_features(ctx):
    from dataclasses import replace

    even = replace(ctx, content={"image": ctx.content["image"][:, :64], "text": ctx.content["text"]})
    assert not _item_vectors("mmgef", {}, even)[0].shared_space  # one width is not one space: no manifest says so
    joint = replace(even, joint_modalities=frozenset({"image", "text"}))
    assert _item_vectors("mmgef", {}, joint)[0].shared_space
    assert _item_vectors("mmgef", {"fusion": "shared"}, even)[0].shared_space
    assert not _item_vectors("mmgef", {"fusion": "per_modality"}, joint)[0].shared_space
    with pytest.raises(ConfigError, match="fusion=per_modality"):
        make_model("mmgef", {"fusion": "shared"}, ctx)  # 128-d image, 64-d text


def test_mmgef_per_modality_learned_graphs_are_lattices_mix(ctx):
    """learned_graph=per_modality: one learned kNN graph per modality on its own projection, mixed by softmax
    modality weights that train on a rebuild batch; with equal weights each modality's graph is half the learned part."""
    from dataclasses import replace

    from mmgef.graphs.learned import knn_graph, normalize_knn

    torch.manual_seed(0)
    model = make_model("mmgef", {"learned_graph": "per_modality", "lambda_coeff": 0.0}, ctx)
    k = model.p.knn_k
    assert model.frozen.idx.shape[1] == k + 2 * k  # the raw-feature graph (weight 0 here) and one graph per modality
    with torch.no_grad():
        built = model.build_content_graph()
        parts = [knn_graph(model.proj_m[m](model.feats[m]), k) for m in model.names]
        expected = normalize_knn([p.scaled(0.5) for p in parts])
    x = torch.randn(ctx.n_items, 3)
    assert torch.allclose(built.mm(x), sum(p.mm(x) for p in expected), atol=1e-5)
    model.train()
    model.on_epoch_start(0)
    model.loss(_batch(ctx)).backward()
    assert model.modal_weight.grad is not None and model.modal_weight.grad.abs().sum() > 0
    fused = make_model("mmgef", {}, ctx)
    assert fused.modal_weight is None and fused.frozen.idx.shape[1] == 2 * k
    joint = replace(ctx, content={"image": ctx.content["image"][:, :64], "text": ctx.content["text"]},
                    joint_modalities=frozenset({"image", "text"}))
    with pytest.raises(ConfigError, match="learned_graph=per_modality"):
        make_model("mmgef", {"learned_graph": "per_modality"}, joint)  # one shared projection: nothing per modality


def test_mmgef_per_modality_initial_and_learned_graphs_are_lattices_graph(ctx):
    """initial_graph + learned_graph = per_modality, raw content, nothing else in E^u: MM-GEF's E^m is LATTICE's item
    graph, λ Σ_m w_m norm(S̃^m) + (1 − λ) norm(Σ_m w_m Ã^m), given the same projections."""
    torch.manual_seed(0)
    lattice = make_model("lattice", {}, ctx)
    mmgef = make_model("mmgef", {"initial_graph": "per_modality", "learned_graph": "per_modality", "use_cf_graph": False,
                                 "modality_graphs": False, "normalize_content": False}, ctx)
    mmgef.proj_m.load_state_dict(lattice.proj.state_dict())
    x = torch.randn(ctx.n_items, 3)
    with torch.no_grad():
        assert torch.allclose(mmgef.build_content_graph().mm(x), lattice.build_content_graph().mm(x), atol=1e-5)
        fused = make_model("mmgef", {"use_cf_graph": False, "modality_graphs": False, "normalize_content": False}, ctx)
        assert not torch.allclose(fused.initial.mm(x), sum(0.5 * g.mm(x) for g in mmgef.modal_initial), atol=1e-3)
    # the modality weights now also weigh the initial graphs: a gradient with the learned part switched off
    only_initial = make_model("mmgef", {"initial_graph": "per_modality", "learned_graph": "per_modality",
                                        "lambda_coeff": 1.0}, ctx)
    only_initial.train()
    only_initial.on_epoch_start(0)
    only_initial.loss(_batch(ctx)).backward()
    assert only_initial.modal_weight.grad.abs().sum() > 0


def test_mmgef_normalize_content_false_projects_the_raw_vectors(ctx):
    raw = {m: 3.0 * x.astype("float32") for m, x in ctx.content.items()}
    borrowed = ModelContext(ctx.n_users, ctx.n_items, ctx.train, raw)
    as_given, _ = _item_vectors("mmgef", {"normalize_content": False}, borrowed)
    for m, x in raw.items():
        np.testing.assert_array_equal(as_given.feats[m].numpy(), x)
    _, normalised_scores = _item_vectors("mmgef", {}, borrowed)
    assert not torch.allclose(as_given.scores(torch.arange(10)), normalised_scores)


def test_mmgef_cf_graph_all_pairs_is_eq_3_4(ctx):
    model = make_model("mmgef", {"cf_graph": "all_pairs"}, ctx)
    r = torch.as_tensor((ctx.train > 0).toarray(), dtype=torch.float32)
    c = r.T @ r
    c.fill_diagonal_(0)
    assert torch.allclose(model.cf_graph.adj.to_dense(), c / c.max())


def test_mmgef_item_attention_differs_per_item(ctx):
    model, _ = _item_vectors("mmgef", {"attention": "item"}, ctx)
    w = model.attention_weights()
    assert w.shape == (ctx.n_items, 4) and torch.allclose(w.sum(1), torch.ones(ctx.n_items))
    assert w[:, 0].std() > 0


def test_mmgef_degree_attention_depends_on_the_item_degree_only(ctx):
    model, _ = _item_vectors("mmgef", {"attention": "degree"}, ctx)
    w = model.attention_weights()
    assert w.shape == (ctx.n_items, 4) and torch.allclose(w.sum(1), torch.ones(ctx.n_items))
    assert torch.allclose(w, torch.full_like(w, 0.25))  # b = 0 at start: the global attention
    with torch.no_grad():
        model.att_degree.copy_(torch.tensor([1.0, 0.0, 0.0, -1.0]))  # content up and E^c down with degree
    w = model.attention_weights()
    degree = torch.as_tensor(ctx.train.getnnz(axis=0))
    low, high = degree.argmin(), degree.argmax()
    assert w[low, 3] > w[high, 3] and w[low, 0] < w[high, 0]
    same = degree == degree[low]
    assert torch.allclose(w[same], w[low].expand(int(same.sum()), 4))  # equal degree, equal weights
    model.train()
    model.loss(_batch(ctx)).backward()
    assert model.att_degree.grad is not None and model.att_degree.grad.abs().sum() > 0


@pytest.mark.parametrize("gate", ["global", "degree"])
def test_mmgef_h_gate_starts_as_the_paper_and_learns(ctx, gate):
    _, paper = _item_vectors("mmgef", {}, ctx)
    model, gated = _item_vectors("mmgef", {"h_gate": gate}, ctx)
    assert torch.allclose(paper, gated, atol=1e-6)  # a gate of 1 at the start
    with torch.no_grad():
        model.h_gate.c.fill_(-30.0)  # a closed gate: LightGCN's item vectors alone
    users, items = model.embeddings()
    _, lgcn_items = model.backbone.embeddings()
    assert torch.allclose(items, lgcn_items, atol=1e-6)
    model.h_gate.c.data.fill_(0.0)
    model.train()
    model.loss(_batch(ctx)).backward()
    assert model.h_gate.c.grad is not None and model.h_gate.c.grad != 0
    if gate == "degree":
        assert model.h_gate.d.grad != 0
        with torch.no_grad():
            model.h_gate.d.fill_(-2.0)  # head items take less content than tail items
        model.eval()
        h = model.item_graph_embeddings().norm(dim=1)
        degree = torch.as_tensor(ctx.train.getnnz(axis=0))
        assert h[degree.argmax()] < h[degree.argmin()]


def test_mmgef_content_term_adds_a_trained_map_of_each_items_content(ctx):
    plain, paper = _item_vectors("mmgef", {}, ctx)
    with pytest.raises(ConfigError, match="content_term=true"):
        plain.content_vectors()
    model, _ = _item_vectors("mmgef", {"content_term": True}, ctx)
    users, items = model.embeddings()
    content = model.content_vectors()
    assert content.shape == items.shape and content.abs().sum() > 0
    # the paper's item vectors plus the content term, nothing else (the same seed draws the same weights first)
    with torch.no_grad():
        for m in model.content_head.values():
            m.weight.zero_(), m.bias.zero_()
    model.eval()  # drops the cached vectors
    assert torch.allclose(model.scores(torch.arange(10)), paper, atol=1e-5)
    # an item's content term is a function of its features alone: copy item 0's features to item 1
    with torch.no_grad():
        for m in model.content_head.values():
            torch.nn.init.normal_(m.weight)
        for name in model.names:
            model.feats[name][1] = model.feats[name][0]
        c = model.content_vectors()
    assert torch.allclose(c[0], c[1]) and not torch.allclose(c[0], c[2])
    model.train()
    model.loss(_batch(ctx)).backward()
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in model.content_head.values())


def test_mmgef_content_gate_scales_the_content_term_by_degree(ctx):
    with pytest.raises(ConfigError, match="content_term=true"):
        make_model("mmgef", {"content_gate": "degree"}, ctx)
    _, ungated = _item_vectors("mmgef", {"content_term": True}, ctx)
    model, gated = _item_vectors("mmgef", {"content_term": True, "content_gate": "degree"}, ctx)
    assert torch.allclose(ungated, gated, atol=1e-6)  # a gate of 1 at the start
    model.train()
    model.loss(_batch(ctx)).backward()
    assert model.content_gate.c.grad != 0 and model.content_gate.d.grad != 0
    with torch.no_grad():
        model.content_gate.d.fill_(-2.0)  # head items take less of the content term than tail items
    model.eval()
    _, items = model.embeddings()
    with torch.no_grad():
        model.content_gate.c.fill_(-30.0)  # closed: the item vectors without the content term
    model.eval()
    _, closed = model.embeddings()
    share = (items - closed).norm(dim=1) / model.content_vectors().norm(dim=1)
    degree = torch.as_tensor(ctx.train.getnnz(axis=0))
    assert share[degree.argmax()] < share[degree.argmin()]
    assert torch.allclose(share, 2 * torch.sigmoid(-2.0 * model.content_gate.z), atol=1e-4)


def test_mmgef_content_norm_adds_the_content_term_at_unit_length(ctx):
    with pytest.raises(ConfigError, match="content_term=true"):
        make_model("mmgef", {"content_norm": True}, ctx)
    raw, _ = _item_vectors("mmgef", {"content_term": True}, ctx)
    model, _ = _item_vectors("mmgef", {"content_term": True, "content_norm": True}, ctx)
    raw_c, unit = raw.content_vectors(), model.content_vectors()
    assert not torch.allclose(raw_c.norm(dim=1), torch.ones(ctx.n_items), atol=1e-2)
    assert torch.allclose(unit.norm(dim=1), torch.ones(ctx.n_items), atol=1e-5)
    assert torch.allclose(unit, torch.nn.functional.normalize(raw_c, dim=1), atol=1e-6)  # same weights, same direction
    model.eval()
    _, items = model.embeddings()
    assert torch.allclose(items - unit, raw.embeddings()[1] - raw_c, atol=1e-5)  # the rest of the vector unchanged
    model.train()
    model.loss(_batch(ctx)).backward()
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in model.content_head.values())


def test_mmgef_id_dropout_gives_an_item_without_interactions_its_neighbours_id_part(ctx):
    train = ctx.train.tolil(copy=True)
    train[:, 7] = 0  # item 7 loses its training interactions
    cold = ModelContext(ctx.n_users, ctx.n_items, train.tocsr(), ctx.content)
    torch.manual_seed(0)
    model = make_model("mmgef", {"id_dropout": 0.3, "content_term": True}, cold)
    model.eval()
    own = model.backbone.embeddings()[1]
    id_part = model.embeddings()[1] - model.item_graph_embeddings() - model.content_vectors()
    w = model.initial.mm(torch.eye(ctx.n_items))[7]  # item 7's row of the raw-content kNN graph
    w[7] = 0.0
    assert torch.allclose(id_part[7], w @ own / w.sum(), atol=1e-5)
    warm = torch.arange(ctx.n_items) != 7
    assert torch.allclose(id_part[warm], own[warm], atol=1e-5)
    # in training about 30% of the warm items take their neighbours' ID part instead of their own
    model.train()
    torch.manual_seed(1)
    id_part = model.embeddings()[1] - model.item_graph_embeddings() - model.content_vectors()
    replaced = (~torch.isclose(id_part, own, atol=1e-6).all(1))[warm].float().mean()
    assert 0.15 < replaced < 0.45
    # the paper's model (id_dropout 0) keeps every item's own ID part
    torch.manual_seed(0)
    paper = make_model("mmgef", {"content_term": True}, cold)
    paper.eval()
    id_part = paper.embeddings()[1] - paper.item_graph_embeddings() - paper.content_vectors()
    assert torch.allclose(id_part, paper.backbone.embeddings()[1], atol=1e-5)


def test_mmgef_confidence_weighted_cf_graph_differs_from_counts(ctx):
    count = make_model("mmgef", {}, ctx).cf_graph.adj.to_dense()
    shrunk = make_model("mmgef", {"cf_weight": "shrunk", "cf_shrink": 5.0}, ctx).cf_graph.adj.to_dense()
    pruned = make_model("mmgef", {"cf_min_count": 4}, ctx).cf_graph.adj.to_dense()
    assert not torch.allclose(count, shrunk)
    assert (pruned > 0).sum() < (count > 0).sum()


def test_mmgef_cf_crossfit_trains_each_user_on_the_other_halfs_cooccurrences(ctx):
    torch.manual_seed(0)
    model = make_model("mmgef", {"cf_crossfit": True}, ctx)
    half = model.user_half.numpy()
    assert 0.3 < half.mean() < 0.7
    # a pair linked by users of one half only is in the E^c of the other half's users, never in their own
    train = ctx.train.tocsc()
    for f in (0, 1):
        own = model.cf_halves[f].adj.to_dense()
        co_other = (train[half != f].T @ train[half != f]).toarray()
        co_own = (train[half == f].T @ train[half == f]).toarray()
        only_own = (co_own > 0) & (co_other == 0)
        np.fill_diagonal(only_own, False)
        assert only_own.any() and (own.numpy()[only_own] == 0).all()
    # training scores a user with its half's item vectors; evaluation with E^c from every user, as without crossfit
    batch = _batch(ctx)
    model.train()
    torch.manual_seed(3)
    _, pos, neg = model.batch_vectors(batch)
    torch.manual_seed(3)
    content = model.content_graph()
    for f in (0, 1):
        h = model.item_graph_embeddings(model.item_graph(content, model.cf_halves[f]))
        rows = model.user_half[batch.users] == f
        full = model.backbone.embeddings()[1] + h
        assert torch.allclose(pos[rows], full[batch.pos[rows]], atol=1e-5)
        assert torch.allclose(neg[rows], full[batch.neg[rows]], atol=1e-5)
    model.eval()
    plain = make_model("mmgef", {}, ctx)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    assert torch.allclose(model.embeddings()[1], plain.embeddings()[1], atol=1e-6)
    # and the loss trains the attention through both halves
    model.train()
    model.loss(batch).backward()
    assert model.att_global.grad is not None and model.att_global.grad.abs().sum() > 0
    # with a content term, each half's item vectors carry it too
    torch.manual_seed(0)
    with_content = make_model("mmgef", {"cf_crossfit": True, "content_term": True}, ctx)
    with_content.train()
    _, pos, _ = with_content.batch_vectors(batch)
    h = with_content.item_graph_embeddings(with_content.item_graph(with_content.content_graph(), with_content.cf_halves[1]))
    rows = with_content.user_half[batch.users] == 1
    full = with_content.backbone.embeddings()[1] + h + with_content.content_vectors()
    assert torch.allclose(pos[rows], full[batch.pos[rows]], atol=1e-5)
    with pytest.raises(ConfigError, match="use_cf_graph"):
        make_model("mmgef", {"cf_crossfit": True, "use_cf_graph": False}, ctx)


def test_mmgef_modality_subsets(ctx):
    _, both = _item_vectors("mmgef", {}, ctx)
    _, text = _item_vectors("mmgef", {"modalities": ["text"]}, ctx)
    _, image = _item_vectors("mmgef", {"modalities": ["image"]}, ctx)
    assert not torch.allclose(both, text) and not torch.allclose(text, image)


def test_mmgef_modalities_of_different_sizes_get_own_projections(ctx):
    model, s = _item_vectors("mmgef", {}, ctx)  # synthetic image 128-d, text 64-d
    assert not model.shared_space and set(model.proj_m) == {"image", "text"}
    assert torch.isfinite(s).all()


@pytest.mark.parametrize("backbone", ["mf", "ngcf", "lightgcn"])
def test_lattice_on_each_backbone(ctx, backbone):
    model, s = _item_vectors("lattice", {"backbone": backbone}, ctx)
    assert type(model.backbone).__name__.lower() == backbone
    assert s.shape == (10, ctx.n_items) and torch.isfinite(s).all()
    assert model.backbone.item_dim() == model.backbone.embeddings()[1].shape[1]  # NGCF: its layers side by side
    torch.manual_seed(0)
    plain = make_model(backbone, {}, ctx)
    plain.eval()
    assert not torch.allclose(plain.scores(torch.arange(10)), s)  # the graph branch adds something


def test_lattice_with_cf_graph_adds_half_of_mmgef_ec(ctx):
    """MM-GEF Table 2's "LATTICE + CF": (A + E^c)/2 with MM-GEF's own E^c, so it differs from LATTICE."""
    torch.manual_seed(0)
    plus = make_model("lattice", {"use_cf_graph": True}, ctx)
    plus.eval()
    mmgef_ec = make_model("mmgef", {}, ctx).cf_graph
    x = torch.randn(ctx.n_items, 8)
    assert torch.allclose(plus.item_graph().mm(x), 0.5 * plus.frozen.mm(x) + 0.5 * mmgef_ec.mm(x), atol=1e-6)
    torch.manual_seed(0)
    plain = make_model("lattice", {}, ctx)
    plain.eval()
    assert plain.cf_graph is None
    assert not torch.allclose(plain.scores(torch.arange(10)), plus.scores(torch.arange(10)))


@pytest.mark.parametrize("variant", ["feats", "cf_feats"])
def test_lattice_variants(ctx, variant):
    model = make_model("lattice", {"variant": variant}, ctx)
    model.train()
    model.on_epoch_start(0)
    model.loss(_batch(ctx)).backward()
    assert model.content_proj["image"].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["lattice", "mmgef"])
def test_lambda_out_of_range(ctx, name):
    with pytest.raises(ConfigError, match=r"'lambda_coeff': Input should be less than or equal to 1"):
        make_model(name, {"lambda_coeff": 1.5}, ctx)


@pytest.mark.parametrize("name", ["lattice", "mmgef"])
def test_k_not_below_item_count(ctx, name):
    with pytest.raises(ConfigError, match=r"knn_k=100 must be between 1"):
        make_model(name, {"knn_k": 100}, ctx)


def test_cold_items_get_content_only_vectors():
    ds = generate(SyntheticConfig(n_users=150, n_items=100, seed=4))
    split = make_split(ds, "cold", 0)
    ctx = ModelContext(ds.n_users, ds.n_items, split.train, ds.content)
    model = make_model("mmgef", {}, ctx)
    co = model.cf_graph.adj.to_dense()
    cold = torch.as_tensor(split.cold_items)
    assert co[cold].abs().sum() == 0  # no co-occurrence edges for cold items
    model.eval()
    s = model.scores(torch.arange(5))
    assert torch.isfinite(s).all()


def test_mmgef_normalises_handed_over_content_in_place_and_copies_borrowed_content(ctx):
    """``owns_content`` (what ``runs.prepare`` passes) lets MM-GEF keep the one feature matrix, normalised in place,
    rather than a second, normalised copy; a borrowed context's arrays are left as they were."""
    raw = {m: 3.0 * x.astype("float32") for m, x in ctx.content.items()}
    borrowed = ModelContext(ctx.n_users, ctx.n_items, ctx.train, {m: x.copy() for m, x in raw.items()})
    model = make_model("mmgef", {}, borrowed)
    for m, x in borrowed.content.items():
        assert np.array_equal(x, raw[m])  # untouched
        assert not np.shares_memory(model.feats[m].numpy(), x)
    owned = ModelContext(ctx.n_users, ctx.n_items, ctx.train, {m: x.copy() for m, x in raw.items()}, owns_content=True)
    model_owned = make_model("mmgef", {}, owned)
    for m, x in owned.content.items():
        assert np.shares_memory(model_owned.feats[m].numpy(), x)  # one matrix, not two
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(model_owned.feats[m].numpy(), model.feats[m].numpy(), rtol=1e-6)


def test_mixing_weights_name_each_source_and_follow_the_learned_parameters(ctx):
    model, _ = _item_vectors("mmgef", {}, ctx)
    names = model.names  # the synthetic data's two modalities
    att_keys = ["attention E^m", *(f"attention {m} kNN graph" for m in names), "attention E^c"]
    w = model.mixing_weights()
    assert list(w) == att_keys and w == pytest.approx(dict.fromkeys(att_keys, 0.25))  # equal logits at the start
    with torch.no_grad():
        model.att_global.copy_(torch.tensor([0.0, 0.0, 0.0, float(np.log(3.0))]))
    assert model.mixing_weights()["attention E^c"] == pytest.approx(0.5)  # 3 / (1 + 1 + 1 + 3)
    # one graph in E^u: no attention to report
    alone, _ = _item_vectors("mmgef", {"use_cf_graph": False, "modality_graphs": False}, ctx)
    assert alone.mixing_weights() == {}
    item, _ = _item_vectors("mmgef", {"attention": "item"}, ctx)
    assert list(item.mixing_weights().values()) == pytest.approx(item.attention_weights().mean(0).tolist())
    plus, _ = _item_vectors("mmgef", {"learned_graph": "per_modality", "h_gate": "global", "content_term": True,
                                      "content_gate": "degree"}, ctx)
    with torch.no_grad():
        plus.modal_weight.copy_(torch.tensor([float(np.log(4.0)), 0.0]))
        plus.h_gate.c.fill_(-30.0)  # closed
    got = plus.mixing_weights()
    assert got[f"modality weight {names[0]}"] == pytest.approx(0.8) and got[f"modality weight {names[1]}"] == pytest.approx(0.2)
    assert got["h gate"] == pytest.approx(0.0, abs=1e-6) and got["content gate"] == pytest.approx(1.0)
    lattice, _ = _item_vectors("lattice", {}, ctx)
    assert lattice.mixing_weights() == pytest.approx({f"modality weight {m}": 0.5 for m in names})
    lightgcn, _ = _item_vectors("lightgcn", {}, ctx)
    assert lightgcn.mixing_weights() == {}


@pytest.mark.parametrize("name", ["lattice", "mmgef"])
def test_ivf_gemm_graphs_on_a_small_catalogue_are_the_exact_ones(ctx, name, monkeypatch):
    """knn_method=ivf-gemm reaches both kNN searches (raw content and learned): with fewer lists than probes (100 items
    make 2 lists) every row is scored against every row, so the model computes what exact search gives it."""
    import mmgef.graphs.knn as knn

    widths = []
    search = knn.ivf_gemm_topk

    def spy(x, k, **kw):
        widths.append(x.shape[1])
        return search(x, k, **kw)

    _, exact = _item_vectors(name, {"knn_method": "exact"}, ctx)
    monkeypatch.setattr(knn, "ivf_gemm_topk", spy)
    _, gemm = _item_vectors(name, {"knn_method": "ivf-gemm"}, ctx)
    assert torch.allclose(gemm, exact, atol=1e-5)
    # LATTICE: each modality's raw graph (128-d image, 64-d text), then each one's learned graph of 64-d projections;
    # MM-GEF: the raw-content graph of both (192-d), the modality graphs, then its learned graph
    assert widths == ([128, 64, 64, 64] if name == "lattice" else [192, 128, 64, 64])
