"""The one in-memory dataset every reader produces."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from mmgef.errors import MMGEFError


@dataclass
class Dataset:
    """Users, items and their interactions over dense 0-based indices, plus item content.

    ``user_ids[u]`` / ``item_ids[i]`` hold the raw ids (strings) of index ``u`` / ``i``.
    ``labels`` is the given split (0 train, 1 valid, 2 test) when the source has one.
    ``content[m]`` is an ``[n_items, d_m]`` float32 matrix whose row ``i`` describes item ``i``;
    ``user_content[m]`` likewise for users (e.g. ``review``: the encoded text of their reviews).
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None = None
    labels: np.ndarray | None = None
    content: dict[str, np.ndarray] = field(default_factory=dict)
    user_content: dict[str, np.ndarray] = field(default_factory=dict)
    item_texts: list[str] | None = None
    item_images: list[str] | None = None  # per item an image file (absolute path) or http(s) URL, "" for none
    user_reviews: list[str] | None = None
    synthetic: bool = False
    source: str = ""
    joint_modalities: frozenset[str] = frozenset()  # modalities embedded by one joint encoder (CLIP image + text)
    feature_sources: dict[str, dict] = field(default_factory=dict)  # modality → the `mmgef features` manifest that made it
    split_overlap: int = 0  # rows dropped because their (user, item) pair was already in another part of the given split

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int64)
        n = len(self.users)
        problems = [] if len(self.items) == n else [f"{len(self.items)} item entries for {n} user entries"]
        problems += [f"{a} has {len(getattr(self, a))} entries for {n} interactions"
                     for a in ("timestamps", "labels") if getattr(self, a) is not None and len(getattr(self, a)) != n]
        problems += [f"{a} has {len(getattr(self, a))} entries for {self.n_items} items"
                     for a in ("item_texts", "item_images") if getattr(self, a) is not None and len(getattr(self, a)) != self.n_items]
        problems += [f"item features '{m}' have {x.shape[0]} rows for {self.n_items} items"
                     for m, x in self.content.items() if x.shape[0] != self.n_items]
        problems += [f"user features '{m}' have {x.shape[0]} rows for {self.n_users} users"
                     for m, x in self.user_content.items() if x.shape[0] != self.n_users]
        if problems:
            raise MMGEFError(f"dataset '{self.name}': {'; '.join(problems)}. "
                             "Fix: give one row per item (user) in id order and one entry per interaction.")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.users)

    @property
    def has_given_split(self) -> bool:
        return self.labels is not None

    def matrix(self, mask: np.ndarray | None = None) -> sp.csr_matrix:
        """Binary user × item CSR of the (masked) interactions."""
        u, i = (self.users, self.items) if mask is None else (self.users[mask], self.items[mask])
        m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def fingerprint(self) -> dict[str, str]:
        """Short hashes of what a trained model depends on: the interactions (and given split), the
        raw id lists in index order and every loaded feature matrix. A run stores them, so loading
        it on changed data (edited, reordered, other features) is an error naming the part."""

        def h(*arrays: np.ndarray | None) -> str:
            d = hashlib.blake2b(digest_size=8)
            for a in arrays:
                if a is not None:
                    a = np.ascontiguousarray(a)
                    d.update(str((a.dtype.str, a.shape)).encode())
                    # the array's own buffer, not a tobytes() copy (a wide feature matrix would be held twice)
                    d.update(memoryview(a).cast("B") if a.dtype != object else "\n".join(map(str, a.ravel())).encode())
            return d.hexdigest()

        out = {"interactions": h(self.users, self.items, self.labels),
               "user ids": h(np.asarray(self.user_ids, dtype=str)), "item ids": h(np.asarray(self.item_ids, dtype=str))}
        out.update({f"item features '{m}'": h(x) for m, x in self.content.items()})
        out.update({f"user features '{m}'": h(x) for m, x in self.user_content.items()})
        return out

    def user_index(self) -> dict[str, int]:
        return {str(r): k for k, r in enumerate(self.user_ids)}

    def item_index(self) -> dict[str, int]:
        return {str(r): k for k, r in enumerate(self.item_ids)}

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "synthetic": self.synthetic,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "density": self.n_interactions / max(1, self.n_users * self.n_items),
            "features": {m: list(x.shape) for m, x in self.content.items()},
            "user_features": {m: list(x.shape) for m, x in self.user_content.items()},
            "timestamps": self.timestamps is not None,
        }
        if self.labels is not None:
            out["given_split"] = {name: int((self.labels == k).sum()) for k, name in enumerate(("train", "valid", "test"))}
        return out
