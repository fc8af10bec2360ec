"""dataprune.outputs.check_output (the one place that decides output paths) and the file modes of
atomic writes."""

from __future__ import annotations

import os
import stat

import pytest

from dataprune.atomic import atomic_dir, atomic_write, umask
from dataprune.errors import DataValidationError
from dataprune.outputs import check_output


def test_output_equal_to_input_is_refused_also_through_links(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("{}\n")
    with pytest.raises(DataValidationError, match="same file as the input"):
        check_output(p, inputs=[p])
    link = tmp_path / "link.jsonl"
    os.symlink(p, link)
    with pytest.raises(DataValidationError, match="same file"):
        check_output(link, inputs=[p])
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(DataValidationError, match="same file"):
        check_output(alias / "d.jsonl", inputs=[p])
    assert check_output(tmp_path / "other.jsonl", inputs=[p, "hub/id", None]) == (
        tmp_path / "other.jsonl"
    )


def test_folders(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.jsonl").write_text("{}\n")
    with pytest.raises(DataValidationError, match="holds the input"):
        check_output(tmp_path, kind="dir", inputs=[data / "x.jsonl"], overwrite=True)
    with pytest.raises(DataValidationError, match="part of the input folder"):
        check_output(data / "x.jsonl", inputs=[data])
    with pytest.raises(DataValidationError, match=r"not empty.*--overwrite"):
        check_output(data, kind="dir")
    assert check_output(data, kind="dir", overwrite=True) == data
    assert check_output(tmp_path / "new" / "deeper", kind="dir") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(DataValidationError, match="is a file; expected an output folder"):
        check_output(data / "x.jsonl", kind="dir")
    with pytest.raises(DataValidationError, match="is a folder; expected an output file"):
        check_output(data)
    with pytest.raises(DataValidationError, match="is a file, not a folder"):
        check_output(data / "x.jsonl" / "out.jsonl")


def test_the_probe_leaves_nothing_behind(tmp_path):
    check_output(tmp_path / "o.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_keep_the_umask_and_an_existing_mode(tmp_path):
    old = os.umask(0o022)
    try:
        assert umask() == 0o022
        new = tmp_path / "new.txt"
        with atomic_write(new) as fh:
            fh.write("x")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        private = tmp_path / "private.txt"
        private.write_text("old")
        private.chmod(0o600)
        with atomic_write(private) as fh:
            fh.write("new")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text() == "new"
        with atomic_dir(tmp_path / "model") as d:
            (d / "w.bin").write_bytes(b"1")
        assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
        os.umask(0o027)
        with atomic_write(tmp_path / "group.txt") as fh:
            fh.write("x")
        assert stat.S_IMODE((tmp_path / "group.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target) as d:
        (d / "a").write_text("2")
        raise RuntimeError("boom")
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with atomic_dir(target) as d:
        (d / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
