"""Contrastive pre-training (CIMA + BCE), MixGCF hard negatives and --init of LightGCN."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmgef.cli import app
from mmgef.config import resolve_run_config
from mmgef.data.formats import read_native
from mmgef.data.split import make_split
from mmgef.errors import ConfigError
from mmgef.models.base import Batch, ModelContext
from mmgef.models.losses import info_nce, pairwise_bce
from mmgef.models.mixgcf import mixgcf_negative
from mmgef.runs import prepare
from mmgef.training.sampling import UniformSampler
from tests.helpers import make_model

cli = CliRunner()


def test_info_nce_matches_a_hand_computed_value_and_falls_when_modalities_agree():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # cosines: a0·b0 = 1/√2, a0·b1 = 0, a1·b0 = 1/√2, a1·b1 = 1; logits = cos / 0.1
    c = 1 / math.sqrt(2)
    row0 = -math.log(math.exp(c / 0.1) / (math.exp(c / 0.1) + math.exp(0.0)))
    row1 = -math.log(math.exp(1 / 0.1) / (math.exp(c / 0.1) + math.exp(1 / 0.1)))
    col0 = -math.log(math.exp(c / 0.1) / (math.exp(c / 0.1) + math.exp(c / 0.1)))
    col1 = -math.log(math.exp(1 / 0.1) / (math.exp(0.0) + math.exp(1 / 0.1)))
    expected = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    assert info_nce(a, b, 0.1).item() == pytest.approx(expected, rel=1e-5)
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    assert info_nce(x, x, 0.1) < 0.5 * info_nce(x, y, 0.1)


def test_cima_is_eq_11_binary_cross_entropy_over_the_2x2_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    c = 1 / math.sqrt(2)  # s(p, q) = cos / τ: [[c, 0], [c, 1]] / 0.1; C = I

    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    terms = [-math.log(sigmoid(c / 0.1)), -math.log(1 - sigmoid(0.0)),  # (0,0) matches, (0,1) does not
             -math.log(1 - sigmoid(c / 0.1)), -math.log(sigmoid(1 / 0.1))]  # (1,0) does not, (1,1) matches
    assert pairwise_bce(a, b, 0.1).item() == pytest.approx(sum(terms) / 4, rel=1e-5)


def test_inter_modal_attention_is_eq_8_on_a_hand_case():
    from mmgef.models.pretrain import ModalityAttention

    att = ModalityAttention(2)  # relu form is the default
    with torch.no_grad():
        att.query.copy_(torch.tensor([1.0, -1.0]))
    e1, e2 = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 3.0]])  # aᵀe′: 2 and −3 → ReLU: 2 and 0
    w = att.weights(torch.stack([e1, e2], dim=1))
    expected = torch.tensor([[math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]])
    assert torch.allclose(w, expected)
    assert torch.allclose(att([e1, e2]), expected[0, 0] * e1 + expected[0, 1] * e2)
    assert ModalityAttention(2, "tanh").proj is not None and att.proj is None


@pytest.mark.parametrize("items_per_candidate", [48, 1])  # 30 items ≤ 48·7: every item scored; > 1·7: gathered
def test_mixgcf_picks_the_highest_scoring_mixed_candidate_per_layer(items_per_candidate, monkeypatch):
    import mmgef.models.mixgcf as mixgcf

    monkeypatch.setattr(mixgcf, "DENSE_ITEMS_PER_CANDIDATE", items_per_candidate)
    g = torch.Generator().manual_seed(0)
    b, m, layers, d, n = 5, 7, 3, 4, 30
    items = torch.randn(n, layers, d, generator=g)
    users = torch.randn(b, layers, d, generator=g)
    pos = items[:b]
    cands = torch.randint(b, n, (b, m), generator=g)
    torch.manual_seed(11)
    neg, chosen = mixgcf_negative(users, pos, items, cands)
    torch.manual_seed(11)
    alpha = torch.rand(b, layers, 1)
    for r in range(b):
        for layer in range(layers):
            mixed = alpha[r, layer] * pos[r, layer] + (1 - alpha[r, layer]) * items[cands[r], layer]  # [M, d]
            best = cands[r, int((mixed @ users[r, layer]).argmax())]
            assert chosen[r, layer] == best
            expect = alpha[r, layer] * pos[r, layer] + (1 - alpha[r, layer]) * items[best, layer]
            assert torch.allclose(neg[r, layer], expect)


def test_mixgcf_candidates_are_never_positives(tiny_dir):
    ds = read_native(tiny_dir)
    train = make_split(ds, "random", 0).train
    sampler = UniformSampler(train, n_candidates=16)
    dense = train.toarray() > 0
    for users, pos, neg in sampler.batches(256, np.random.default_rng(0)):
        assert neg.shape == (len(users), 16)
        assert not dense[users[:, None], neg].any()
        assert dense[users, pos].all()


@pytest.mark.parametrize("name", ["mf", "vbpr", "lattice", "mmgef", "mmgcn", "grcn", "freedom", "mcpt"])
def test_mixgcf_is_refused_when_the_config_is_resolved(tiny_dir, name):
    """Before any data is read or model built: only layered models (lightgcn, ngcf) can be mixed."""
    with pytest.raises(ConfigError, match=f"model '{name}' has no propagation layers"):
        resolve_run_config(model=name, data=str(tiny_dir), sets=["sampler=mixgcf"])
    for layered in ("lightgcn", "ngcf"):
        assert resolve_run_config(model=layered, sets=["sampler=mixgcf"]).train.sampler == "mixgcf"


def _ctx(tiny_dir, **drop):
    ds = read_native(tiny_dir)
    split = make_split(ds, "random", 0)
    user_content = {} if drop.get("reviews") else ds.user_content
    return ModelContext(ds.n_users, ds.n_items, split.train, ds.content, user_content)


def test_every_branch_runs_on_builtin_data_and_ablations_change_scores(tiny_dir):
    ctx = _ctx(tiny_dir)
    assert "review" in ctx.user_content
    users = torch.arange(10)
    scores = {}
    for name, params in {"full": {}, "no_cima": {"use_cima": False}, "no_graphs": {"use_graphs": False},
                         "no_reviews": {"use_reviews": False}, "image_only": {"modalities": ["image"]}}.items():
        torch.manual_seed(0)
        model = make_model("mcpt", params, ctx)
        batch = Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8]))
        loss = model.loss(batch)
        loss.backward()
        assert torch.isfinite(loss)
        if name == "full":
            assert model.use_cima and model.use_reviews and model.n_layers == 2
            assert model.review_proj.weight.grad is not None and model.item_proj["text"].weight.grad is not None
        model.eval()
        scores[name] = model.scores(users)
    for name in ("no_graphs", "no_reviews", "image_only"):
        assert not torch.allclose(scores["full"], scores[name]), name


def test_missing_branches_switch_off_with_a_notice(tiny_dir, caplog):
    ctx = _ctx(tiny_dir, reviews=True)
    with caplog.at_level(logging.WARNING):
        model = make_model("mcpt", {"modalities": ["image"]}, ctx)
    assert not model.use_reviews and not model.use_cima
    assert "review branch switched off" in caplog.text and "CIMA switched off" in caplog.text


def test_pretrain_then_init_lightgcn_with_mixgcf(tiny_dir, tmp_path):
    pre = tmp_path / "pre"
    res = cli.invoke(app, ["pretrain", "--data", str(tiny_dir), "--out", str(pre), "--set", "epochs=3",
                           "--set", "progress=false", "--set", "cima_weight=0.4"])
    assert res.exit_code == 0, res.output
    assert (pre / "pretrained.safetensors").exists() and "pre-trained embeddings" in res.output
    from mmgef.io import read_safetensors

    vectors = read_safetensors(pre / "pretrained.safetensors")
    cfg = resolve_run_config(model="lightgcn", data=str(tiny_dir), sets=[f"train.init={pre / 'pretrained.safetensors'}"])
    model = prepare(cfg).model
    assert torch.equal(model.user_emb.weight.detach(), vectors["user_emb"])
    assert torch.equal(model.item_emb.weight.detach(), vectors["item_emb"])
    out = tmp_path / "ft"
    res = cli.invoke(app, ["train", "--model", "lightgcn", "--data", str(tiny_dir), "--out", str(out), "--init",
                           str(pre / "pretrained.safetensors"), "--sampler", "mixgcf", "--set", "epochs=2",
                           "--set", "n_candidates=8", "--set", "progress=false"])
    assert res.exit_code == 0, res.output
    saved = (out / "config.yaml").read_text()
    assert "sampler: mixgcf" in saved and "pretrained.safetensors" in saved
    # wrong width and wrong dataset are clear errors
    bad = cli.invoke(app, ["train", "--model", "lightgcn", "--data", str(tiny_dir), "--out", str(tmp_path / "x"),
                           "--init", str(pre / "pretrained.safetensors"), "--set", "embedding_dim=16"])
    assert bad.exit_code == 2 and "Fix: --set embedding_dim=64" in bad.output
    bad = cli.invoke(app, ["train", "--model", "lightgcn", "--data", "synthetic", "--out", str(tmp_path / "y"),
                           "--init", str(pre / "pretrained.safetensors")])
    assert bad.exit_code == 2 and "not on 'synthetic'" in bad.output
    bad = cli.invoke(app, ["train", "--model", "lightgcn", "--data", str(tiny_dir), "--init", str(tmp_path / "none.st")])
    assert bad.exit_code == 2 and "file not found" in bad.output


def test_an_init_file_counts_by_its_content_not_its_path(tmp_path, monkeypatch):
    """A run started from the same weights is the same run whether the path is relative or absolute."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.safetensors").write_bytes(b"weights one")
    monkeypatch.chdir(tmp_path)

    def digest(init: str) -> str:
        return resolve_run_config(model="lightgcn", data="synthetic", sets=[f"train.init={init}"]).digest()

    relative = digest("a/w.safetensors")
    assert relative == digest(str(tmp_path / "a" / "w.safetensors")) == digest("./a/../a/w.safetensors")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "w.safetensors").write_bytes(b"weights one")
    assert digest("b/w.safetensors") == relative  # a moved copy
    (tmp_path / "b" / "w.safetensors").write_bytes(b"weights two")
    assert digest("b/w.safetensors") != relative
    assert digest("missing.safetensors") != relative


def test_content_initialisation_keeps_the_content_geometry_at_the_id_scale(tiny_dir, tmp_path):
    """The paper's CLIP baseline: item vectors from fused content, written for --init like a pre-training."""
    from mmgef.features.fusion import concat
    from mmgef.io import read_safetensors

    out = tmp_path / "cinit"
    res = cli.invoke(app, ["train", "--model", "cinit", "--data", str(tiny_dir), "--out", str(out), "--set", "progress=false"])
    assert res.exit_code == 0, res.output
    vectors = read_safetensors(out / "pretrained.safetensors")
    items = vectors["item_emb"].numpy()
    ctx = _ctx(tiny_dir)
    assert items.shape == (ctx.n_items, 64)
    xavier = math.sqrt(6 / (ctx.n_items + 64)) * math.sqrt(64 / 3)  # mean row norm of a Xavier-uniform table
    assert np.allclose(np.linalg.norm(items, axis=1), xavier, rtol=1e-4)
    fused = concat(ctx.content)  # image and text of unequal widths: unit blocks side by side
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    content_cos, init_cos = (fused @ fused.T) / 2, unit @ unit.T
    off = ~np.eye(ctx.n_items, dtype=bool)
    assert np.corrcoef(content_cos[off], init_cos[off])[0, 1] > 0.8  # similar content, similar starting vectors
    profile = make_model("cinit", {"users": "profile"}, ctx)
    random = make_model("cinit", {}, ctx)
    assert torch.allclose(profile.item_vecs, random.item_vecs)
    user_norm = math.sqrt(6 / (ctx.n_users + 64)) * math.sqrt(64 / 3)  # random users are a Xavier table: same scale
    assert abs(float(random.user_vecs.norm(dim=1).mean()) / user_norm - 1) < 0.05
    assert torch.allclose(profile.user_vecs.norm(dim=1), torch.tensor(user_norm), rtol=1e-4)
    cb_scores = make_model("cb", {}, ctx).scores(torch.arange(20))
    for model, expected in ((profile, 0.5), (random, None)):
        r = np.corrcoef(model.scores(torch.arange(20)).flatten().numpy(), cb_scores.flatten().numpy())[0, 1]
        assert r > expected if expected else abs(r) < 0.3  # profiles rank like CB; random users do not
