"""Every model on the shared contract: it learns, scores, keeps all its tensors in modules, moves as one."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmgef.data.split import make_split
from mmgef.data.synthetic import SyntheticConfig, generate
from mmgef.errors import DataError
from mmgef.graphs import native
from mmgef.models.base import Batch, ModelContext
from mmgef.models.mixgcf import Layered
from mmgef.models.registry import MODELS
from mmgef.params import MODEL_PARAMS
from mmgef.training.sampling import UniformSampler
from tests.helpers import make_model


@pytest.fixture(scope="module")
def ctx() -> ModelContext:
    ds = generate(SyntheticConfig(n_users=150, n_items=100, seed=2))
    split = make_split(ds, "random", 0)
    return ModelContext(ds.n_users, ds.n_items, split.train, ds.content)


@pytest.mark.parametrize("name", [n for n, cls in MODELS.items() if cls.trainable])
def test_training_steps_lower_the_loss(ctx, name):
    torch.manual_seed(0)
    model = make_model(name, {}, ctx)
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
    model = make_model("cb", {"modalities": ["text"]}, ctx)
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


def test_the_positive_check_is_the_same_with_and_without_the_compiled_kernel(monkeypatch):
    """The kernel searches each user's own keys, the fallback sorted draws over all keys: the same answers, so the
    same negatives (and runs) either way."""
    rng = np.random.default_rng(3)
    train = sp.random(400, 120, density=0.1, format="csr", random_state=3)
    train.data[:] = 1
    sampler = UniformSampler(train)
    users = rng.integers(0, 400, 20000)
    items = np.where(rng.random(20000) < 0.3, train.indices[rng.integers(0, train.nnz, 20000)],
                     rng.integers(0, 120, 20000))
    truth = train[users, items].A1 > 0
    runs = []
    for kernel in (native.kernel, lambda: None):
        monkeypatch.setattr(native, "kernel", kernel)
        assert np.array_equal(sampler.is_positive(users, items), truth)
        runs.append(np.concatenate([neg for *_, neg in sampler.batches(512, np.random.default_rng(0))]))
    assert truth.sum() > 1000 and np.array_equal(*runs)


def test_negatives_interacted_never_draws_an_item_without_training_interactions():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    rng = np.random.default_rng(0)
    anywhere = np.concatenate([neg for *_, neg in UniformSampler(train).batches(2, rng) for _ in range(200)])
    assert {3, 4} <= set(anywhere.tolist())  # items 3 and 4 have no training interactions
    sampler = UniformSampler(train, negatives="interacted")
    users = np.array([2, 2, 1, 0] * 50)
    drawn = sampler.negatives(users, rng)
    assert set(drawn.tolist()) <= {0, 1, 2} and not sampler.is_positive(users, drawn).any()
    with pytest.raises(DataError, match="negatives=all"):  # user 0 has both items anyone interacted with
        UniformSampler(sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32)), negatives="interacted")


def test_cached_scores_refresh_after_training(ctx):
    model = make_model("lightgcn", {}, ctx)
    model.eval()
    before = model.scores(torch.tensor([0])).clone()
    model.train()
    with torch.no_grad():
        model.user_emb.weight.add_(1.0)
    model.eval()
    assert not torch.allclose(before, model.scores(torch.tensor([0])))


def test_every_params_schema_has_a_model_class():
    assert set(MODELS) == set(MODEL_PARAMS)


def test_models_declared_layered_implement_what_mixgcf_needs(ctx):
    """The config admits MixGCF by ``params.layered``; the model class must back that flag."""
    for name, cls in MODEL_PARAMS.items():
        assert isinstance(make_model(name, {}, ctx), Layered) == cls.layered, name


def _stray_tensors(model: torch.nn.Module) -> list[str]:
    """Tensors a module holds outside its registered parameters and buffers (caches excepted)."""

    def tensors_in(value) -> bool:
        if isinstance(value, torch.Tensor):
            return True
        if isinstance(value, (list, tuple, set)):
            return any(tensors_in(v) for v in value)
        if isinstance(value, dict):
            return any(tensors_in(v) for v in value.values())
        return hasattr(value, "__dict__") and not isinstance(value, (torch.nn.Module, type)) and any(
            tensors_in(v) for v in vars(value).values())

    stray = []
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr in ("_parameters", "_buffers", "_modules") or attr.startswith("_cache"):
                continue
            if tensors_in(value):
                stray.append(f"{name or type(model).__name__}.{attr}")
    return stray


MODEL_VARIANTS = [(n, {}) for n in MODELS] + [("lattice", {"backbone": "mf"}), ("lattice", {"backbone": "ngcf"}),
                                              ("lightgcn", {"edge_dropout": 0.5}), ("mmgef", {"attention": "item"})]


@pytest.mark.parametrize("name,params", MODEL_VARIANTS, ids=[f"{n}{p}" for n, p in MODEL_VARIANTS])
def test_no_model_keeps_a_tensor_outside_its_parameters_and_buffers(ctx, name, params):
    model = make_model(name, params, ctx, reg=1e-4)
    model.train()
    model.on_epoch_start(0)
    coo = ctx.train.tocoo()
    batch = Batch(torch.as_tensor(coo.row[:64]), torch.as_tensor(coo.col[:64]), torch.randint(0, ctx.n_items, (64,)))
    if model.trainable:
        model.loss(batch).backward()
    model.eval()
    model.scores(torch.arange(3))
    model.train()  # the eval-mode embedding cache is derived and dropped on the way back
    assert _stray_tensors(model) == []


def test_the_stray_tensor_check_can_fail(ctx):
    model = make_model("mf", {}, ctx)
    model.hidden = [torch.zeros(2)]
    assert _stray_tensors(model) == ["MF.hidden"]


def test_vbpr_batch_vectors_equal_the_full_catalogue_rows(ctx):
    model = make_model("vbpr", {}, ctx)
    batch = Batch(torch.tensor([0, 1, 2]), torch.tensor([5, 5, 9]), torch.tensor([9, 3, 7]))
    u, i = model.embeddings()
    got = model.batch_vectors(batch)
    for a, b in zip(got, (u[batch.users], i[batch.pos], i[batch.neg])):
        assert torch.allclose(a, b, atol=1e-6)
