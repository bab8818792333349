"""tools/venv_install.py hands pip's own configuration to uv, or refuses to and leaves it to pip."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import venv_install  # noqa: E402


def test_pip_environment_settings_become_the_same_uv_flags(monkeypatch):
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///srv/a/simple file:///srv/b/simple")
    monkeypatch.setenv("PIP_CONSTRAINT", "/etc/vd-constraints.txt")
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/wheels")
    settings = venv_install.pip_settings(sys.executable)   # read back through pip itself
    assert settings["extra-index-url"] == "file:///srv/a/simple file:///srv/b/simple"
    args = venv_install.uv_arguments(settings)
    pairs = list(zip(args[::2], args[1::2]))
    assert pairs.count(("--extra-index-url", "file:///srv/a/simple")) == 1
    assert pairs.count(("--extra-index-url", "file:///srv/b/simple")) == 1
    assert ("--constraint", "/etc/vd-constraints.txt") in pairs
    # the environment overrides pip's files, as it does in pip
    assert [value for flag, value in pairs if flag == "--find-links"] == ["/srv/wheels"]
    assert pairs[-1] == ("--index-strategy", "unsafe-best-match")   # pip's best match across indexes


def test_a_pip_setting_uv_cannot_match_leaves_the_install_to_pip(monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(ValueError, match="no-index"):
        venv_install.uv_arguments(venv_install.pip_settings(sys.executable))


def test_pips_certificate_and_timeout_reach_uv_through_its_environment(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("UV_HTTP_TIMEOUT", raising=False)
    env = venv_install.uv_environment({"cert": "/etc/ssl/ca.pem", "default-timeout": "180"})
    assert env["SSL_CERT_FILE"] == "/etc/ssl/ca.pem" and env["UV_HTTP_TIMEOUT"] == "180"
