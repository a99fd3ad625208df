"""Bad data files, through `mmgef data validate` (the same readers `train` uses)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.bad_inputs.harness import GOOD_INTER, Case, Env, mmrec, npy, run_case, write

F3 = np.ones((4, 3), dtype=np.float32)


def _json(tmp: Path, train: object, val: object = None, test: object = None, **extra: object) -> list[str]:
    d = tmp / "j"
    for name, obj in (("train.json", train), ("val.json", val or {"0": [1]}), ("test.json", test or {"0": [2]}), *extra.items()):
        write(d / name, obj if isinstance(obj, (str, bytes)) else json.dumps(obj))
    return ["data", "validate", str(d)]


def _native(tmp: Path, inter: str | bytes = "user_id,item_id\na,x\na,y\na,z\nb,x\nb,y\nb,z\n",
            files: dict[str, str | bytes] | None = None) -> list[str]:
    d = tmp / "n"
    write(d / "interactions.csv", inter)
    for name, text in (files or {}).items():
        write(d / name, text)
    return ["data", "validate", str(d)]


def _feature(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"image": x}


def _complex() -> np.ndarray:
    return np.ones((4, 3), dtype=np.complex64)


def _nan() -> np.ndarray:
    x = F3.copy()
    x[2, 1] = np.nan
    return x


def _opposite_infs() -> np.ndarray:
    x = F3.copy()
    x[3, 0], x[3, 1] = np.inf, -np.inf  # a row sum of NaN, not inf
    return x


def _garbage_npy(tmp: Path, _: Env) -> list[str]:
    argv = mmrec(tmp, GOOD_INTER)
    write(tmp / "d" / "image_feat.npy", b"not an npy file at all")
    return argv


def _item_map_with_dup(tmp: Path, _: Env) -> list[str]:
    return _json(tmp, {"0": [0, 1]}, **{"item2id.json": '{"a": 0, "b": 1, "c": 1, "d": 2}'})


def _latin1_json(tmp: Path, _: Env) -> list[str]:
    return _json(tmp, {"0": [0, 1]}, **{"user2id.json": '{"caf\xe9": 0}'.encode("latin-1")})


CASES = [
    # MMRec atomic files
    Case("inter-empty-file", lambda t, e: mmrec(t, ""), r"d\.inter: is empty \(not even a header line\)"),
    Case("inter-header-only", lambda t, e: mmrec(t, "userID\titemID\n"), r"d\.inter: has a header but no interactions"),
    Case("inter-missing-column", lambda t, e: mmrec(t, "userID\titem\n0\t1\n"), r"d\.inter:1: header lacks column\(s\) \['itemID'\]"),
    Case("inter-non-integer-id", lambda t, e: mmrec(t, "userID\titemID\n0\t1\n0\tabc\n"), r"d\.inter:3: column 'itemID' has a non-integer"),
    Case("inter-negative-id", lambda t, e: mmrec(t, "userID\titemID\n-4\t1\n"), r"d\.inter:2: column 'userID' has a non-integer or negative"),
    Case("inter-bad-label", lambda t, e: mmrec(t, "userID\titemID\tx_label\n0\t1\t0\n0\t2\t7\n"), r"d\.inter:3: x_label 7 is not 0"),
    Case("inter-bad-timestamp", lambda t, e: mmrec(t, "userID\titemID\ttimestamp\n0\t1\tyesterday\n"), r"d\.inter:2: timestamp 'yesterday'"),
    Case("inter-spaced-id", lambda t, e: mmrec(t, "userID\titemID\n0\t1\n 0\t2\n"), r"d\.inter:3: userID ' 0' has leading or trailing spaces"),
    Case("inter-ragged-line", lambda t, e: mmrec(t, "userID\titemID\n0\t1\n0\t2\t9\t9\n"), r"d\.inter: cannot parse as tab-separated text"),
    Case("inter-not-utf8", lambda t, e: mmrec(t, "userID\titemID\tnote\n0\t1\tok\n1\t2\tcaf\xe9\n".encode("latin-1")),
         r"d\.inter:3: byte b'\\xe9' .* not valid utf-8.*--encoding"),
    Case("inter-user-only-in-test", lambda t, e: mmrec(t, GOOD_INTER + "9\t1\t2\n"), r"d\.inter:14: user 9 \(1 users in all\) has interactions only in validation/test"),
    Case("inter-item-beyond-features", lambda t, e: mmrec(t, GOOD_INTER + "0\t7\t0\n", _feature(F3)),
         r"d\.inter: item id 7 is outside the 4 items declared"),
    Case("feature-nan", lambda t, e: mmrec(t, GOOD_INTER, _feature(_nan())), r"image_feat\.npy: row 2 \(item 2\) contains NaN or inf"),
    Case("feature-infs", lambda t, e: mmrec(t, GOOD_INTER, _feature(_opposite_infs())), r"image_feat\.npy: row 3 \(item 3\) contains NaN or inf"),
    Case("feature-1d", lambda t, e: mmrec(t, GOOD_INTER, _feature(np.ones(4, np.float32))), r"image_feat\.npy: expected a 2-D"),
    Case("feature-complex", lambda t, e: mmrec(t, GOOD_INTER, _feature(_complex())), r"image_feat\.npy: dtype complex64 is not a real number type"),
    Case("feature-object", lambda t, e: mmrec(t, GOOD_INTER, _feature(np.array([[{"a": 1}]] * 4, dtype=object))),
         r"image_feat\.npy: not a readable \.npy array"),
    Case("feature-garbage", _garbage_npy, r"image_feat\.npy: not a readable \.npy array"),
    Case("feature-string-dtype", lambda t, e: mmrec(t, GOOD_INTER, _feature(np.full((4, 3), "x"))),
         r"image_feat\.npy: dtype <U1 is not a real number type"),
    # LATTICE json
    Case("json-malformed", lambda t, e: _json(t, '{"0": [1,\n 2,,]}'), r"train\.json:2: malformed JSON"),
    Case("json-not-object", lambda t, e: _json(t, "[[1, 2]]"), r"train\.json: expected an object"),
    Case("json-user-not-integer", lambda t, e: _json(t, {"alice": [1]}), r"train\.json: entry for user 'alice'"),
    Case("json-item-not-integer", lambda t, e: _json(t, {"0": [1, "x"]}), r"train\.json: entry for user '0'"),
    Case("json-val-user-without-train", lambda t, e: _json(t, {"0": [0, 1]}, {"5": [2]}), r"val\.json: user 5 .* only in validation/test"),
    Case("json-empty-train", lambda t, e: _json(t, {}), r"train\.json: the split is empty"),
    Case("json-id-map-not-object", lambda t, e: _json(t, {"0": [0, 1]}, **{"item2id.json": '["a", "b"]'}),
         r"item2id\.json: expected an object mapping raw item ids"),
    Case("json-id-map-gap", lambda t, e: _json(t, {"0": [0, 1]}, **{"item2id.json": '{"a": 0, "b": 1, "c": 3}'}),
         r"item2id\.json: index 2 is not used"),
    Case("json-id-map-two-ids-one-index", _item_map_with_dup, r"item2id\.json: index 1 is given to two raw item ids \('b' and 'c'\)"),
    Case("json-id-map-too-small", lambda t, e: _json(t, {"0": [0, 1], "1": [2]}, **{"user2id.json": '{"a": 0}'}),
         r"train\.json: user id 1 is outside the 1 users declared"),
    Case("json-not-utf8", _latin1_json, r"user2id\.json:1: byte b'\\xe9'"),
    # native layout
    Case("native-missing-column", lambda t, e: _native(t, "user,item_id\na,x\n"), r"interactions\.csv:1: header lacks column\(s\) \['user_id'\]"),
    Case("native-empty-id", lambda t, e: _native(t, "user_id,item_id\na,x\n,y\n"), r"interactions\.csv:3: empty user_id or item_id"),
    Case("native-spaced-id", lambda t, e: _native(t, "user_id,item_id\na,x\na ,y\n"), r"interactions\.csv:3: user_id 'a ' has leading or trailing spaces"),
    Case("native-unknown-item", lambda t, e: _native(t, files={"items.csv": "item_id\nx\ny\n"}), r"interactions\.csv:4: item_id 'z' is not in items\.csv"),
    Case("native-items-repeat", lambda t, e: _native(t, files={"items.csv": "item_id\nx\ny\nz\ny\n"}), r"items\.csv:5: item_id 'y' repeats"),
    Case("native-items-no-id-column", lambda t, e: _native(t, files={"items.csv": "id,title\nx,a\n"}), r"items\.csv:1: header lacks 'item_id'"),
    Case("native-items-spaced-id", lambda t, e: _native(t, files={"items.csv": "item_id\nx\ny \nz\n"}), r"items\.csv:3: item_id 'y ' has leading"),
    Case("native-items-not-utf8", lambda t, e: _native(t, files={"items.csv": "item_id,title\nx,a\ny,caf\xe9\nz,c\n".encode("cp1252")}),
         r"items\.csv:3: byte b'\\xe9' at offset \d+ is not valid utf-8"),
    Case("native-reviews-not-utf8", lambda t, e: _native(t, files={"reviews.csv": "user_id,text\na,na\xefve\n".encode("latin-1")}),
         r"reviews\.csv:2: byte b'\\xef' .* not valid utf-8"),
    Case("native-reviews-no-text", lambda t, e: _native(t, files={"reviews.csv": "user_id,review\na,good\n"}), r"reviews\.csv:1: header must include user_id and text"),
    Case("native-bad-split-name", lambda t, e: _native(t, "user_id,item_id,split\na,x,train\na,y,validation\n"),
         r"interactions\.csv:3: split 'validation' is not train/valid/test"),
    Case("native-feature-order-missing-item", lambda t, e: (npy(t / "n" / "features" / "image.npy", F3[:2]), _native(t, files={"features/item_ids.txt": "x\ny\n"}))[1],
         r"item_ids\.txt: item 'z' \(1 in all\) has no feature row"),
    Case("native-user-features-without-ids", lambda t, e: (npy(t / "n" / "user_features" / "review.npy", F3[:2]), _native(t))[1],
         r"user_ids\.txt: missing"),
    Case("native-unknown-encoding", lambda t, e: [*_native(t), "--encoding", "klingon"], r"encoding 'klingon' is unknown"),
    Case("native-random-split-too-few", lambda t, e: _native(t, "user_id,item_id\na,x\na,y\nb,x\n"),
         r"the valid split is empty \(only 0 of 2 users have the 3 or more interactions"),
    Case("native-given-split-overlap", lambda t, e: _native(t, "user_id,item_id,split\na,x,train\na,y,train\na,x,valid\na,z,test\n"),
         r"the valid split is empty \(1 rows repeat a \(user, item\) pair already listed in another part"),
    Case("no-known-layout", lambda t, e: (write(t / "x" / "notes.txt", "hi"), ["data", "validate", str(t / "x")])[1],
         r"no known layout"),
    Case("unknown-dataset-name", lambda t, e: ["data", "stats", "no-such-data"], r"dataset 'no-such-data'.*lastfm2k"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_data_file(case: Case, tmp_path: Path, env: Env) -> None:
    run_case(case, tmp_path, env)


def test_the_largest_finite_features_are_not_taken_for_inf(tmp_path):
    """The finiteness check sums each row in float64: float32's largest values must not overflow it."""
    from mmgef.data.formats import load_feature

    x = np.full((3, 4096), np.finfo(np.float32).max, dtype=np.float32)
    np.save(tmp_path / "big.npy", x)
    assert np.array_equal(load_feature(tmp_path / "big.npy", 3), x)
