"""One-file model bundles (``.vdm``): a trained run a user can hand on, verify and score with.

A bundle is a zip holding the files a run needs to score (see :mod:`vd.model.runfolder`)::

    model.vdm
      manifest.json      what the bundle is (below), with the sha256 of every other member
      model.keras        the best model (loaded with safe_mode=True, like any run's)
      config.json        the run's config: frames, dim, label map, the extractor the features
                         came from, and the operating point (threshold, where it came from,
                         the temperature it was chosen under)
      calibration.json   the temperature (only when the run was calibrated)
      summary.json       the run's final numbers (only when the run has one)

``manifest.json`` = ``{"format": "vd-bundle", "bundle_schema", "run_schema", "vd_version",
"created", "extractor": {backbone, layer, weights, weights_sha256, frames, image_size,
preprocess, feature_dim}, "operating_point": {threshold, source, temperature},
"files": {name: sha256}}``. ``weights`` is the run's weights label (``imagenet``,
``random(seed=N)`` or ``sha256:…``); ``weights_sha256`` is that file's hash, or null.

:func:`write_bundle` makes one from a run folder. :func:`open_bundle` turns a bundle into a run
folder ``load_run`` reads: extracted once into a private cache folder named by the bundle file's
sha256 (``$VD_CACHE_DIR/bundles/``, default ``~/.cache/vd/bundles/``, mode 0700), every member
checked against the manifest on every open. A file that is not a zip, whose members do not match
their manifest sums (or are missing, or extra), or that needs a newer vd (a bundle or run schema
above this vd's) is refused with one line (:class:`vd.errors.UserError`, exit 2). The manifest
guards against damage and tampering in transit, not against a forged bundle: the sums travel
inside it. The model itself is still loaded with ``safe_mode=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from vd.errors import UserError
from vd.hashing import sha256_file

FORMAT = "vd-bundle"
BUNDLE_SCHEMA = 1           # what the members and manifest mean; bump on incompatible change
MANIFEST = "manifest.json"
REQUIRED = ("model.keras", "config.json")
OPTIONAL = ("calibration.json", "summary.json")
SUFFIX = ".vdm"
MAX_UNPACKED = 4 << 30      # bytes: a bundle that unpacks to more is refused (a zip bomb)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_root() -> Path:
    """Where bundles are unpacked: ``$VD_CACHE_DIR/bundles`` or ``$XDG_CACHE_HOME/vd/bundles``
    (``~/.cache/vd/bundles``)."""
    if os.environ.get("VD_CACHE_DIR"):
        return Path(os.environ["VD_CACHE_DIR"]) / "bundles"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vd" / "bundles"


def extractor_identity(config: dict) -> dict:
    """The extractor a run's features came from, as the manifest records it."""
    ext = dict(config.get("extractor") or {})
    weights = ext.get("weights")
    sha = str(weights)[len("sha256:"):] if str(weights or "").startswith("sha256:") else None
    return {"backbone": ext.get("backbone"), "layer": ext.get("layer"), "weights": weights,
            "weights_sha256": sha, "frames": config.get("frames"),
            "image_size": ext.get("image_size"), "preprocess": ext.get("preprocess"),
            "feature_dim": ext.get("feature_dim", config.get("dim"))}


def write_bundle(run_dir, out) -> dict:
    """Pack the run folder ``run_dir`` into the bundle file ``out`` (written atomically).

    Returns the manifest. The run must be finished (config.json and model.keras).
    """
    from vd import __version__
    from vd.model.scoring import RUN_SCHEMA, _read_config

    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    for name in REQUIRED:
        if not (run_dir / name).is_file():
            raise UserError(f"{run_dir} is not a finished vd run (needs config.json and model.keras)")
    config = _read_config(run_dir / "config.json")
    members = {name: (run_dir / name).read_bytes()
               for name in REQUIRED + OPTIONAL if (run_dir / name).is_file()}
    manifest = {
        "format": FORMAT,
        "bundle_schema": BUNDLE_SCHEMA,
        "run_schema": int(config.get("vd_run_schema", RUN_SCHEMA)),
        "vd_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "source_run": run_dir.name,
        "extractor": extractor_identity(config),
        "operating_point": {"threshold": float(config.get("threshold", 0.5)),
                            "source": config.get("threshold_source", "default"),
                            "temperature": _temperature(members.get("calibration.json"))},
        "files": {name: sha256_bytes(data) for name, data in members.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("." + out.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(_info(MANIFEST, zipfile.ZIP_DEFLATED),
                        json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            for name, data in members.items():  # model.keras is a zip already: stored as is
                kind = zipfile.ZIP_STORED if name.endswith(".keras") else zipfile.ZIP_DEFLATED
                zf.writestr(_info(name, kind), data)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _info(name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same run → same bytes
    info.compress_type = compress_type
    info.external_attr = 0o644 << 16
    return info


def _temperature(calibration: bytes | None) -> float:
    if calibration is None:
        return 1.0
    return float(json.loads(calibration)["temperature"])


def read_manifest(path) -> dict:
    """The bundle's manifest, checked for format and version (one-line UserError otherwise)."""
    with _open_zip(path) as zf:
        return _manifest(zf, path)


def _open_zip(path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        why = "not a zip file" if isinstance(e, zipfile.BadZipFile) else type(e).__name__
        raise UserError(f"{path} is not a vd model bundle ({why})") from None


def _manifest(zf: zipfile.ZipFile, path) -> dict:
    from vd import __version__
    from vd.model.scoring import RUN_SCHEMA

    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise UserError(f"{path} is not a vd model bundle (no {MANIFEST})") from None
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, OSError) as e:
        raise UserError(f"{path}: damaged bundle manifest ({type(e).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a vd model bundle (its manifest is not a {FORMAT} manifest)")
    try:
        schema, run_schema = int(manifest.get("bundle_schema", 0)), int(manifest.get("run_schema", 1))
    except (TypeError, ValueError):
        raise UserError(f"{path}: damaged bundle manifest (bad schema numbers)") from None
    if schema > BUNDLE_SCHEMA or run_schema > RUN_SCHEMA:
        raise UserError(f"{path} needs a newer vd: it was made by vd {manifest.get('vd_version', '?')} "
                        f"(bundle schema {schema}, run schema {run_schema}); this vd {__version__} "
                        f"reads bundle schema {BUNDLE_SCHEMA}, run schema {RUN_SCHEMA}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise UserError(f"{path}: damaged bundle manifest (no file list)")
    return manifest


def _check_members(zf: zipfile.ZipFile, manifest: dict, path) -> None:
    """Names in the zip = names in the manifest, all known, required ones present, sizes sane."""
    files = manifest["files"]
    names = [i.filename for i in zf.infolist() if i.filename != MANIFEST]
    allowed = set(REQUIRED) | set(OPTIONAL)
    for name in sorted(set(names) | set(files)):
        if name not in allowed:
            raise UserError(f"{path}: unexpected bundle member {name!r}; refused")
    missing = [n for n in REQUIRED if n not in files or n not in names]
    if missing:
        raise UserError(f"{path}: bundle lacks {missing[0]}")
    if set(names) != set(files) or len(names) != len(set(names)):
        raise UserError(f"{path}: bundle members do not match its manifest")
    if sum(i.file_size for i in zf.infolist()) > MAX_UNPACKED:
        raise UserError(f"{path}: bundle unpacks to more than {MAX_UNPACKED >> 30} GiB; refused")


def _verified_folder(folder: Path, manifest: dict) -> bool:
    """True when ``folder`` holds exactly the manifest's files with their sums."""
    try:
        present = {p.name for p in folder.iterdir() if p.name != MANIFEST}
        if present != set(manifest["files"]):
            return False
        return all(sha256_file(folder / n) == s for n, s in manifest["files"].items())
    except OSError:
        return False


def open_bundle(path) -> Path:
    """Bundle file → a verified run folder in the private cache (unpacked on first use).

    Raises a one-line :class:`UserError` for a file that is not a bundle, is damaged or
    tampered with (a member whose sha256 differs from the manifest), or needs a newer vd.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--model {path}: no such run folder or bundle file")
    try:
        digest = sha256_file(path)
    except OSError as e:
        raise UserError(f"cannot read {path}: {type(e).__name__}") from None
    with _open_zip(path) as zf:
        manifest = _manifest(zf, path)
        folder = cache_root() / digest
        if folder.is_dir() and _verified_folder(folder, manifest):
            return folder
        _check_members(zf, manifest, path)
        data = {}
        for name, want in manifest["files"].items():
            try:
                data[name] = zf.read(name)
            except (zipfile.BadZipFile, OSError, EOFError) as e:  # CRC errors included
                raise UserError(f"{path}: bundle member {name} is damaged ({type(e).__name__})") from None
            if sha256_bytes(data[name]) != want:
                raise UserError(f"{path}: bundle member {name} does not match its manifest "
                                f"sha256 (damaged or altered); refused")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", dir=root))
    try:
        for name, blob in data.items():
            (tmp / name).write_bytes(blob)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if folder.exists():  # a stale or altered copy: replace it
            shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process unpacked it meanwhile
            if not _verified_folder(folder, manifest):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def describe(manifest: dict) -> str:
    """One line for the CLI: what a bundle holds."""
    ext = manifest.get("extractor", {})
    op = manifest.get("operating_point", {})
    return (f"{ext.get('backbone')}/{ext.get('layer')} weights {ext.get('weights')}, "
            f"threshold {op.get('threshold', 0.5):g}, temperature {op.get('temperature', 1.0):g}, "
            f"vd {manifest.get('vd_version')}")


__all__ = ["BUNDLE_SCHEMA", "FORMAT", "SUFFIX", "cache_root", "describe", "extractor_identity",
           "open_bundle", "read_manifest", "write_bundle"]
