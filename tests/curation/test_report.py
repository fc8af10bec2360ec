"""The HTML report: sections present, numbers equal to the status file, images inline."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd

from dataprune.curation import curate
from dataprune.curation.report.compare import Comparison, duplicate_components

from fakes import HashingEncoder


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.rows, self.h3, self.imgs, self.measures, self.summary = (
            [],
            {},
            [],
            [],
            {},
            {},
        )

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "tr" and "data-stage" in a:
            self.rows[a["data-stage"]] = (int(a["data-dropped"]), int(a["data-out"]))
        if tag == "tr" and "data-measure" in a:
            self.measures[a["data-measure"]] = (float(a["data-kept"]), float(a["data-random-mean"]))
        if tag == "h3" and "data-reason" in a:
            self.h3.append((a["data-stage"], a["data-reason"], int(a["data-count"])))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "p" and "data-n-kept" in a:
            self.summary = {k: int(v) for k, v in a.items() if k.startswith("data-n")}


def test_report_sections_and_numbers_match_the_status_file(tmp_path):
    rng = np.random.default_rng(1)
    data = []
    for i in range(80):
        bad = i % 5 == 0
        data.append(
            {
                "id": f"x{i}",
                "prompt": f"prompt {i} " + " ".join(rng.choice(list("abcdefgh"), 6)),
                "response": ("short" if bad else "a longer answer " * int(rng.integers(2, 6)))
                + str(i),
                "fault": "planted" if bad else "none",
            }
        )
    data += [dict(data[i], id=f"c{i}") for i in range(1, 11)]
    out = tmp_path / "kept.jsonl"
    res = curate(
        data,
        {
            "stages": [
                "exact_dedup",
                {"quality": {"score": "length", "min": 3}},
                {"select": {"method": "kcenter"}},
            ]
        },
        fraction=0.25,
        id_field="id",
        flag_field="fault",
        encoder=HashingEncoder(),
        output=out,
        random_state=0,
        show_progress_bar=False,
    )
    html = (tmp_path / "kept.jsonl.report.html").read_text()
    p = _Collect()
    p.feed(html)
    assert p.sections == ["summary", "funnel", "scores", "dropped", "duplicates", "kept-vs-random"]
    st = pd.read_parquet(f"{out}.status.parquet")
    assert p.summary == {"data-n-input": len(st), "data-n-kept": int((st.status == "kept").sum())}
    assert list(p.rows.values())[-1][1] == int((st.status == "kept").sum())
    for stage, (n_drop, _n_out) in p.rows.items():
        if stage == "validate":
            assert n_drop == int((st.stage == "validate").sum())
        else:
            assert n_drop == int((st.stage == stage).sum())
    # dropped examples: one heading per (stage, reason kind), counts from the status file
    for stage, kind, count in p.h3:
        sub = st[(st.stage == stage) & st.reason.str.startswith(kind)]
        assert len(sub) == count
    # kept vs random: the flagged share in the report is the kept set's share in the status file
    kept = st[st.status == "kept"]
    assert np.isclose(p.measures["flagged_share"][0], (kept.flagged).mean(), atol=1e-6)
    assert p.measures["flagged_share"][0] < p.measures["flagged_share"][1]  # filters removed them
    assert np.isclose(p.measures["duplicate_share"][0], 0.0)
    assert "coverage" in p.measures
    assert p.imgs and all(s.startswith("data:image/png;base64,") for s in p.imgs)
    assert "http://" not in html and "https://" not in html  # self-contained
    assert res.budget == 22


def test_duplicate_components_and_verdicts():
    comp = duplicate_components(6, np.array([-1, 0, 0, -1, 3, -1]))
    assert comp[0] == comp[1] == comp[2] and comp[3] == comp[4] and comp[5] == -1
    c = Comparison("x", "x", 0.1, np.array([0.2, 0.3]), "lower")
    assert c.verdict == "better"
    assert Comparison("x", "x", 0.25, np.array([0.2, 0.3]), "lower").verdict == "within"
    assert Comparison("x", "x", 0.5, np.array([0.2, 0.3]), "higher").verdict == "better"


def test_a_score_of_a_few_codes_is_drawn_as_counts_per_code(monkeypatch):
    import matplotlib.axes

    from dataprune.curation.report import html

    ticks, hists = [], []
    set_xticks, hist = matplotlib.axes.Axes.set_xticks, matplotlib.axes.Axes.hist

    def spy_ticks(self, t, labels=None, **kw):
        ticks.append(list(labels or []))
        return set_xticks(self, t, labels, **kw)

    def spy_hist(self, *a, **kw):
        hists.append(1)
        return hist(self, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_xticks", spy_ticks)
    monkeypatch.setattr(matplotlib.axes.Axes, "hist", spy_hist)
    # a rare code (3, once in 200) is shown, not clipped away by a percentile range
    codes = np.array([0.0] * 196 + [2.0] * 3 + [3.0] + [np.nan])
    kept = np.arange(len(codes)) % 2 == 0
    assert html._hist(codes, kept, "qtuning_noise", {}).startswith("data:image/png;base64,")
    assert ticks == [["0", "2", "3"]] and not hists
    # a continuous score, or one with cuts, stays a histogram
    html._hist(np.linspace(0, 1, 50), np.ones(50, bool), "ifd", {})
    html._hist(np.array([1.0, 2.0, 3.0] * 5), np.ones(15, bool), "length", {"min": 2.0})
    assert len(hists) == 4
