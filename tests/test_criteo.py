"""The Criteo TSV loader on a generated Criteo-format fixture (tests/fixtures/make_criteo_sample.py)."""

from pathlib import Path

import numpy as np
import pytest

from models.criteo import hash_categories, holdout_split, read_criteo
from models.data import criteo_cardinalities
from models.errors import ModelError
from models.train import predict

FIXTURE = Path(__file__).parent / "fixtures" / "criteo_sample.tsv"
CARDS = criteo_cardinalities(2_000)


def test_reads_labels_counts_and_hashed_categories():
    x, y = read_criteo(FIXTURE, CARDS)
    assert len(y) == 300 and set(np.unique(y)) == {0.0, 1.0}
    assert x["dense"].shape == (300, 13) and x["dense"].dtype == np.float32 and np.isfinite(x["dense"]).all()
    assert x["dense"].min() >= 0  # log(1 + max(count, 0)): the -1 counts and empty fields become 0
    assert x["sparse"].shape == (300, 26) and x["sparse"].dtype == np.int64
    assert (x["sparse"] >= 0).all() and (x["sparse"] < np.array(CARDS)).all()
    first = FIXTURE.read_text().splitlines()[0].split("\t")
    assert y[0] == float(first[0])
    assert x["dense"][0, 0] == pytest.approx(np.log1p(float(first[1])))
    c1 = first[14]
    assert x["sparse"][0, 0] == (0 if c1 == "" else 1 + int(c1, 16) % (CARDS[0] - 1))


def test_missing_values_map_to_row_zero():
    import pandas as pd

    ids = hash_categories(pd.Series(["ff", None, "10"]), 7)
    assert ids.tolist() == [1 + 255 % 6, 0, 1 + 16 % 6]
    x, _ = read_criteo(FIXTURE, CARDS)
    assert (x["sparse"] == 0).mean() > 0.05  # about 10% of the fixture's categories are empty


def test_limit_and_holdout_split():
    x, y = read_criteo(FIXTURE, CARDS, limit=100)
    (xt, yt), (xe, ye) = holdout_split(x, y, every=10)
    assert len(yt) == 90 and len(ye) == 10 and len(xt["dense"]) == 90
    assert np.array_equal(xe["sparse"][1], x["sparse"][10])


def test_a_dlrm_scores_criteo_rows(tiny_ws):
    x, _ = read_criteo(FIXTURE, tiny_ws.preset.config.cardinalities, limit=64)
    scores = predict(tiny_ws.baseline(), x, tiny_ws.names)
    assert scores.shape == (64,) and ((scores > 0) & (scores < 1)).all()


def test_bad_files_are_user_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t2\t3\n")
    with pytest.raises(ModelError, match="40 tab-separated columns"):
        read_criteo(bad, CARDS)
    with pytest.raises(ModelError, match="cannot read"):
        read_criteo(tmp_path / "absent.tsv", CARDS)
    with pytest.raises(ModelError, match="26 categorical"):
        read_criteo(FIXTURE, CARDS[:3])
