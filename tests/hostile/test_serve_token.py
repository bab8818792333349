"""`vd serve`: a token shorter than 16 characters is refused when the server is not bound to
loopback (one line, exit 2, before the model is looked at)."""

from clirun import run_cli
from serveproc import free_port


def test_short_token_on_a_network_bind_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.delenv("VD_TOKEN", raising=False)
    short = tmp_path / "short"
    short.write_text("fifteen-chars-x\n")
    status, _, err = run_cli(["serve", "--host", "0.0.0.0", "--token-file", str(short),
                              "--model", str(tmp_path / "nope"), "--port", str(free_port())])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert err.strip() == ("vd: error: --host 0.0.0.0 is not a loopback address: the token must "
                           "be at least 16 characters, not 15")
    monkeypatch.setenv("VD_TOKEN", "short")
    status, _, err = run_cli(["serve", "--host", "0.0.0.0", "--model", str(tmp_path / "nope"),
                              "--port", str(free_port())])
    assert status == 2 and "at least 16 characters, not 5" in err
    # 16 characters pass the check (the missing model is the next line)
    monkeypatch.setenv("VD_TOKEN", "sixteen-chars-xy")
    status, _, err = run_cli(["serve", "--host", "0.0.0.0", "--model", str(tmp_path / "nope"),
                              "--port", str(free_port())])
    assert status == 2 and "no such run folder" in err
    # loopback needs no token, and any token works there
    monkeypatch.setenv("VD_TOKEN", "short")
    status, _, err = run_cli(["serve", "--model", str(tmp_path / "nope"), "--port",
                              str(free_port())])
    assert status == 2 and "no such run folder" in err
