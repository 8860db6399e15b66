import pytest


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private harness cache, so unit tests never touch the real one."""
    path = tmp_path / "cache"
    monkeypatch.setenv("RWP_HARNESS_CACHE", str(path))
    return path
