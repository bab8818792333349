"""``vd export RUN model.vdm`` and ``--model model.vdm``: one file that scores like its run
folder, refused in one line when it is not a bundle, was altered, or needs a newer vd."""

from __future__ import annotations

import json
import zipfile

import pytest

from clirun import run_cli
from export_runs import THRESHOLD, untrained_run, read_json_lines


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return untrained_run(tmp_path_factory)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def bundle(run_dir, tmp_path):
    out = tmp_path / "model.vdm"
    status, stdout, err = run_cli(["export", str(run_dir), str(out)])
    assert status == 0, err
    assert "wrote" in stdout
    return out


@pytest.fixture
def clip(synthetic_set):
    return str(sorted(synthetic_set.rglob("*.mp4"))[0])


def _rewrite(src, dst, change):
    """Copy the zip ``src`` to ``dst`` with ``change(name, data) -> data`` applied to members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, change(info.filename, zin.read(info.filename)))
    return dst


def _one_line_refusal(args, *needles):
    status, out, err = run_cli(args)
    assert status == 2, (status, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vd: error:"), err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_bundle_holds_run_manifest_and_identity(bundle, run_dir):
    from vd.model.bundle import sha256_bytes

    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert names == {"manifest.json", "model.keras", "config.json", "calibration.json"}
        for name, digest in manifest["files"].items():
            assert sha256_bytes(zf.read(name)) == digest
            assert zf.read(name) == (run_dir / name).read_bytes()
    assert manifest["format"] == "vd-bundle" and manifest["vd_version"]
    ext = manifest["extractor"]
    assert (ext["backbone"], ext["layer"], ext["weights"]) == ("mobilenet_v3_small", "avg_pool",
                                                               "random(seed=0)")
    assert ext["weights_sha256"] is None and ext["feature_dim"] == 576
    op = manifest["operating_point"]
    assert op["threshold"] == pytest.approx(THRESHOLD) and op["temperature"] == pytest.approx(1.7)


def test_bundle_opens_as_verified_run_folder(bundle, private_cache):
    from vd.model.loaded_run import load_run
    from vd.score.predict import resolve_model

    folder = resolve_model(str(bundle))
    assert folder.parent == private_cache / "bundles"
    run = load_run(folder)
    assert run.temperature == pytest.approx(1.7) and run.threshold == pytest.approx(THRESHOLD)
    # a cached copy altered after unpacking is noticed and unpacked again
    (folder / "config.json").write_text("{}")
    again = resolve_model(str(bundle))
    assert again == folder and json.loads((folder / "config.json").read_text())["frames"] == 20


def test_tampered_member_is_refused_in_one_line(bundle, tmp_path, clip):
    def change(name, data):
        if name == "config.json":
            cfg = json.loads(data)
            cfg["threshold"] = 0.01  # a quiet change of the operating point
            return json.dumps(cfg).encode()
        return data

    bad = _rewrite(bundle, tmp_path / "bad.vdm", change)
    _one_line_refusal(["predict", "--model", str(bad), "--no-tta", clip],
                      "config.json", "does not match its manifest")


def test_extra_member_is_refused(bundle, tmp_path):
    bad = tmp_path / "extra.vdm"
    bad.write_bytes(bundle.read_bytes())
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("../evil.py", "print('hi')")
    _one_line_refusal(["export", str(bad), str(tmp_path / "again.vdm")], "unexpected bundle member")


def test_newer_bundle_is_refused_in_one_line(bundle, tmp_path, clip):
    def change(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m.update(bundle_schema=99, vd_version="9.0.0")
            return json.dumps(m).encode()
        return data

    newer = _rewrite(bundle, tmp_path / "newer.vdm", change)
    _one_line_refusal(["predict", "--model", str(newer), "--no-tta", clip],
                      "needs a newer vd", "9.0.0")


def test_not_a_zip_and_not_a_bundle_are_refused(run_dir, tmp_path, clip):
    junk = tmp_path / "junk.vdm"
    junk.write_bytes(b"not a zip at all\n" * 10)
    _one_line_refusal(["predict", "--model", str(junk), "--no-tta", clip], "not a zip file")
    # a .keras file is a zip too, but not a bundle
    _one_line_refusal(["predict", "--model", str(run_dir / "model.keras"), "--no-tta", clip],
                      "not a vd model bundle", "manifest.json")


def test_export_refuses_to_overwrite(bundle, run_dir):
    _one_line_refusal(["export", str(run_dir), str(bundle)], "--overwrite")


def test_predict_with_bundle_equals_run_folder(run_dir, bundle, synthetic_set):
    clips = sorted(str(p) for p in synthetic_set.rglob("*.mp4"))[:2]
    assert clips
    args = ["predict", "--no-tta", "--json", "--quiet", *clips]
    s1, out1, err1 = run_cli([*args[:1], "--model", str(run_dir), *args[1:]])
    s2, out2, err2 = run_cli([*args[:1], "--model", str(bundle), *args[1:]])
    assert s1 == 0 and s2 == 0, (err1, err2)
    a, b = read_json_lines(out1), read_json_lines(out2)
    assert len(a) == len(clips) == len(b)
    for x, y in zip(a, b):
        assert x["video"] == y["video"]
        assert x["violent_probability"] == pytest.approx(y["violent_probability"], abs=1e-6)
        assert x["alarm"] == y["alarm"]


def test_save_threshold_into_a_bundle_is_refused(bundle, synthetic_set):
    """A bundle is read-only: a threshold saved into its unpacked cache would vanish."""
    _one_line_refusal(["evaluate", str(synthetic_set), "--model", str(bundle), "--target-fpr",
                       "0.1", "--save-threshold"], "read-only")
