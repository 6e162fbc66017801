"""`liaison schemas check` gates schema changes against the released versions, on the real registry."""

import json
import os
import shutil
import subprocess

import schemas
from core import REPO_ROOT
from deploy import governance

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")


def _copy_schemas(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(schemas.SCHEMA_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def _edit(root, name, fn):
    path = root / f"{name}.avsc"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc, indent=2))


def _check(root):
    return subprocess.run([LIAISON, "schemas", "check", "--schemas-dir", str(root)], capture_output=True,
                          text=True, timeout=120, env=os.environ)


def test_working_tree_schemas_pass_the_gate(settings):
    res = _check(schemas.SCHEMA_DIR)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("ok  ") == len(schemas.MESSAGE_TYPES)


def test_incompatible_change_fails_naming_subject_field_and_rule(settings, tmp_path):
    root = _copy_schemas(tmp_path)
    _edit(root, "AirTrack", lambda d: d["fields"].append(
        {"name": "squawk_code", "type": "string", "doc": "transponder code"}))
    res = _check(root)
    assert res.returncode == 1
    assert "liaison.internal.air.track-value" in res.stderr
    assert "squawk_code" in res.stderr and "without a default" in res.stderr
    assert "BACKWARD_TRANSITIVE" in res.stderr
    assert "liaison.internal.naval.track-value" not in res.stderr  # only the changed subject fails


def test_type_change_is_named(settings, tmp_path):
    root = _copy_schemas(tmp_path)

    def retype(d):
        next(f for f in d["fields"] if f["name"] == "speed_kt")["type"] = "string"

    _edit(root, "AirTrack", retype)
    res = _check(root)
    assert res.returncode == 1
    assert "field 'speed_kt' changed type" in res.stderr


def test_compatible_change_new_optional_field_passes(settings, tmp_path):
    root = _copy_schemas(tmp_path)
    _edit(root, "AirTrack", lambda d: d["fields"].append(
        {"name": "squawk_code", "type": ["null", "string"], "default": None, "doc": "transponder code"}))
    res = _check(root)
    assert res.returncode == 0, res.stderr
    # and releasing it records v2 for that subject only
    written = governance.release_all(root)
    assert [p.split("/")[-2:] for p in written] == [["liaison.internal.air.track-value", "v2.avsc"]]
    assert _check(root).returncode == 0


def test_register_is_idempotent_and_sets_level(settings):
    first = governance.register_all()
    assert governance.register_all() == first
    from core import serde

    client = serde.registry_client()
    for subject, sid in first.items():
        assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
        assert client.get_latest_version(subject).schema_id == sid
