"""The built-in default dataset: seeded synthetic multimodal interactions.

Users and items share latent topics. Items get an image-like vector (a nonlinear view of their
latent factors), a text-like vector (a linear view), a short title of topic words, and a
long-tail popularity; users get short review texts of their favourite topics and a review vector
(their topics seen through the same text projection as the items' text, plus noise). Both the
collaborative signal and the content therefore carry information, and the same seed gives the
same bytes. Everything produced here is labelled ``synthetic``.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from mmgef.data.dataset import Dataset
from mmgef.schema import Strict

_TOPIC_WORDS = [
    ["acoustic", "folk", "guitar", "unplugged", "ballad", "campfire"],
    ["neon", "synth", "retro", "arcade", "pixel", "laser"],
    ["organic", "cotton", "gentle", "natural", "soft", "bamboo"],
    ["rugged", "outdoor", "trail", "canvas", "alpine", "camp"],
    ["velvet", "noir", "jazz", "smoky", "midnight", "lounge"],
    ["turbo", "carbon", "racing", "sport", "speed", "aero"],
    ["pastel", "cute", "bunny", "candy", "bubble", "sparkle"],
    ["vintage", "oak", "brass", "leather", "classic", "heritage"],
    ["cosmic", "galaxy", "orbit", "stellar", "nebula", "rocket"],
    ["zen", "calm", "minimal", "stone", "linen", "mist"],
    ["tropical", "coconut", "sunny", "palm", "beach", "mango"],
    ["gothic", "dark", "raven", "iron", "shadow", "crypt"],
]
_NOUNS = ["set", "kit", "album", "bag", "lamp", "toy", "mug", "jacket", "poster", "speaker", "blanket", "book"]


class SyntheticConfig(Strict):
    n_users: int = Field(2000, gt=10, le=10_000_000)
    n_items: int = Field(1500, gt=20, le=10_000_000)
    latent_dim: int = Field(16, gt=1)
    mean_interactions: float = Field(20.0, gt=3)
    image_dim: int = Field(128, gt=1)
    text_dim: int = Field(64, gt=1)
    content_noise: float = Field(0.5, ge=0)
    popularity_exponent: float = Field(0.9, ge=0, description="Zipf exponent of the item popularity prior")
    reviews: bool = True
    candidate_pool: int | None = Field(None, gt=0, description="each block of users picks from a shared pool of this many "
                                       "items drawn by popularity (cost O(users × pool), not O(users × items): "
                                       "for catalogues of 100k items and more)")
    seed: int = Field(0, ge=0)


def generate(cfg: SyntheticConfig | None = None) -> Dataset:
    cfg = cfg or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    n_topics = len(_TOPIC_WORDS)
    topic_vecs = rng.normal(size=(n_topics, cfg.latent_dim))
    item_topics = rng.dirichlet(np.full(n_topics, 0.15), size=cfg.n_items)
    user_topics = rng.dirichlet(np.full(n_topics, 0.25), size=cfg.n_users)
    item_lat = item_topics @ topic_vecs + 0.3 * rng.normal(size=(cfg.n_items, cfg.latent_dim))
    user_lat = user_topics @ topic_vecs + 0.3 * rng.normal(size=(cfg.n_users, cfg.latent_dim))

    # Long tail: a Zipf prior over a random permutation of items.
    ranks = rng.permutation(cfg.n_items) + 1
    log_pop = -cfg.popularity_exponent * np.log(ranks)
    scale = 1.5 / _pairwise_dot_std(user_lat, item_lat)

    counts = np.clip(rng.lognormal(np.log(cfg.mean_interactions), 0.6, size=cfg.n_users), 5,
                     min(cfg.n_items // 4, cfg.candidate_pool or cfg.n_items)).astype(int)
    users = np.repeat(np.arange(cfg.n_users), counts)
    items = np.concatenate(list(_sampled_items(user_lat, item_lat, scale, log_pop, counts, rng, cfg.candidate_pool)))
    # Timestamps: each user's interactions spread over a year, in sampling order.
    starts = rng.integers(1_600_000_000, 1_630_000_000, size=cfg.n_users)
    offsets = np.concatenate([np.sort(rng.integers(0, 365 * 86400, size=c)) for c in counts])
    timestamps = (np.repeat(starts, counts) + offsets).astype(np.float64)

    w_img = rng.normal(size=(cfg.latent_dim, cfg.image_dim)) / np.sqrt(cfg.latent_dim)
    w_txt = rng.normal(size=(cfg.latent_dim, cfg.text_dim)) / np.sqrt(cfg.latent_dim)
    image = np.tanh(item_lat @ w_img) + cfg.content_noise * rng.normal(size=(cfg.n_items, cfg.image_dim))
    topic_text = rng.normal(size=(n_topics, cfg.text_dim))
    text = item_topics @ topic_text + item_lat @ w_txt * 0.5
    text = text + cfg.content_noise * rng.normal(size=(cfg.n_items, cfg.text_dim))
    review = user_topics @ topic_text + cfg.content_noise * rng.normal(size=(cfg.n_users, cfg.text_dim))

    titles = [_title(item_topics[i], rng) for i in range(cfg.n_items)]
    reviews = [_review(user_topics[u], rng) for u in range(cfg.n_users)] if cfg.reviews else None
    return Dataset(
        name="synthetic",
        user_ids=np.asarray([f"u{u}" for u in range(cfg.n_users)]),
        item_ids=np.asarray([f"i{i}" for i in range(cfg.n_items)]),
        users=users,
        items=items,
        timestamps=timestamps,
        content={"image": image.astype(np.float32), "text": text.astype(np.float32)},
        user_content={"review": review.astype(np.float32)} if cfg.reviews else {},
        item_texts=titles,
        user_reviews=reviews,
        synthetic=True,
        source=f"synthetic(seed={cfg.seed})",
    )


def _pairwise_dot_std(a: np.ndarray, b: np.ndarray) -> float:
    """Standard deviation of every entry of a @ b.T, without forming it: E[x²] = Σ (aᵀa ⊙ bᵀb) / (n_a n_b)."""
    n = len(a) * len(b)
    mean = float(a.sum(0) @ b.sum(0)) / n
    mean_sq = float(((a.T @ a) * (b.T @ b)).sum()) / n
    return float(np.sqrt(max(mean_sq - mean * mean, 0.0)))


def _sampled_items(user_lat: np.ndarray, item_lat: np.ndarray, scale: float, log_pop: np.ndarray,
                   counts: np.ndarray, rng: np.random.Generator, pool: int | None = None, cells: int = 1 << 24):
    """Each user's items: the top ``counts[u]`` of affinity + popularity + Gumbel noise (sampling without
    replacement), in order. Users go in blocks of about ``cells`` scores, so memory stays O(block × items)
    at any size; the noise is drawn block after block, the same stream as one draw of the whole matrix.
    With ``pool``, each block of 64 users draws ``pool`` candidates from the popularity prior (binary search
    in its CDF: O(pool · log items)) and its users choose among the distinct ones by affinity alone, the
    popularity being spent on the pool."""
    n_users, n_items = len(user_lat), len(item_lat)
    pool = None if pool is None or pool >= n_items else pool
    block = max(1, cells // n_items) if pool is None else 64
    cdf = None if pool is None else np.cumsum(np.exp(log_pop - log_pop.max()))
    for lo in range(0, n_users, block):
        hi = min(lo + block, n_users)
        if cdf is None:
            cand, prior = np.arange(n_items), log_pop
        else:
            cand = np.unique(np.searchsorted(cdf, rng.random(pool) * cdf[-1]))
            need = int(counts[lo:hi].max()) - len(cand)
            if need > 0:  # a heavy user needs more distinct candidates than the draw gave
                cand = np.union1d(cand, rng.choice(np.setdiff1d(np.arange(n_items), cand), need, replace=False))
            prior = np.zeros(len(cand))
        keys = -((user_lat[lo:hi] @ item_lat[cand].T) * scale + prior[None, :] + rng.gumbel(size=(hi - lo, len(cand))))
        for r, c in enumerate(counts[lo:hi]):
            top = np.argpartition(keys[r], c - 1)[:c] if c < len(cand) else np.arange(len(cand))
            yield cand[top[np.argsort(keys[r, top], kind="stable")]]


def _title(topics: np.ndarray, rng: np.random.Generator) -> str:
    first, second = np.argsort(-topics)[:2]
    words = list(rng.choice(_TOPIC_WORDS[first], size=2, replace=False))
    if topics[second] > 0.2:
        words.append(str(rng.choice(_TOPIC_WORDS[second])))
    return " ".join(words + [str(rng.choice(_NOUNS))])


def _review(topics: np.ndarray, rng: np.random.Generator) -> str:
    top = np.argsort(-topics)[:2]
    liked = [str(rng.choice(_TOPIC_WORDS[t])) for t in top]
    return f"I keep coming back to {liked[0]} things, and anything {liked[1]} is a good pick for me."
