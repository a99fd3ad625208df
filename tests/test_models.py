import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmgef.data.split import make_split
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.graphs.bipartite import bipartite_adjacency
from mmgef.graphs.sparse import symmetric_spmm, to_torch_csr
from mmgef.models.base import Batch, ModelContext
from mmgef.models.lightgcn import propagate
from mmgef.models.registry import MODELS, build_model
from mmgef.train.sampling import UniformSampler


@pytest.fixture(scope="module")
def ctx() -> ModelContext:
    ds = generate(SyntheticConfig(n_users=150, n_items=100, seed=2))
    split = make_split(ds, "random", 0)
    return ModelContext(ds.n_users, ds.n_items, split.train, ds.content)


def test_bipartite_adjacency_is_symmetric_and_degree_normalised():
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    a = bipartite_adjacency(r).toarray()
    assert np.allclose(a, a.T)
    # edge (user 0, item 1): degrees 2 and 2 → 1/2; (user 1, item 1): degrees 1 and 2 → 1/sqrt(2)
    assert a[0, 2 + 1] == pytest.approx(0.5) and a[1, 2 + 1] == pytest.approx(2 ** -0.5)
    assert a[2 + 2].sum() == 0  # an item without interactions stays isolated, no NaN


def test_symmetric_spmm_gradient_matches_dense():
    rng = np.random.default_rng(0)
    m = sp.random(20, 20, density=0.2, random_state=0, format="csr", dtype=np.float32)
    m = (m + m.T).tocsr()
    x = torch.tensor(rng.normal(size=(20, 4)), dtype=torch.float32, requires_grad=True)
    symmetric_spmm(to_torch_csr(m), x).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (torch.from_numpy(m.toarray()) @ x2).pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)


def test_lightgcn_propagation_is_layer_mean():
    a = bipartite_adjacency(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    e = torch.randn(6, 2)
    dense = torch.from_numpy(a.toarray())
    want = (e + dense @ e + dense @ dense @ e) / 3
    assert torch.allclose(propagate(to_torch_csr(a), e, 2), want, atol=1e-6)


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if s.cls.trainable])
def test_training_steps_lower_the_loss(ctx, name):
    torch.manual_seed(0)
    model = build_model(name, {}, ctx)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sampler = UniformSampler(ctx.train)
    rng = np.random.default_rng(0)
    users, pos, neg = next(sampler.batches(4096, rng))
    batch = Batch(torch.as_tensor(users), torch.as_tensor(pos), torch.as_tensor(neg))
    model.train()
    first = model.loss(batch).item()
    for _ in range(30):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert model.loss(batch).item() < first * 0.9
    s = model.scores(torch.arange(5))
    assert s.shape == (5, ctx.n_items) and torch.isfinite(s).all()


def test_content_based_scores_are_cosine_to_profile(ctx):
    model = build_model("cb", {"modalities": ["text"]}, ctx)
    items = ctx.content["text"] / np.linalg.norm(ctx.content["text"], axis=1, keepdims=True)
    u = 7
    profile = items[ctx.train[u].indices].mean(0)
    want = items @ (profile / np.linalg.norm(profile))
    assert np.allclose(model.scores(torch.tensor([u]))[0].numpy(), want, atol=1e-5)


def test_sampler_never_returns_a_positive(ctx):
    sampler = UniformSampler(ctx.train)
    rng = np.random.default_rng(1)
    dense = ctx.train.toarray() > 0
    for users, pos, neg in sampler.batches(1000, rng):
        assert dense[users, pos].all()
        assert not dense[users, neg].any()


def test_cached_scores_refresh_after_training(ctx):
    model = build_model("lightgcn", {}, ctx)
    model.eval()
    before = model.scores(torch.tensor([0])).clone()
    model.train()
    with torch.no_grad():
        model.user_emb.weight.add_(1.0)
    model.eval()
    assert not torch.allclose(before, model.scores(torch.tensor([0])))
