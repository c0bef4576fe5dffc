"""tpainn.files.replacing: the target holds the old file or the whole new one, and no partial file is left."""

import pytest

from tpainn.files import replacing


def test_a_completed_block_replaces_the_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    with replacing(target) as partial:
        partial.write_text("new")
        assert target.read_text() == "old"  # not yet: the rename comes after the block
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_failed_block_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with replacing(target) as partial:
            partial.write_text("half")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
