"""`liaison schemas check` gates schema changes against the released versions, on the real registry."""

import json
import os
import shutil
import subprocess

from collections import Counter

import schemas
from core import REPO_ROOT
from deploy import governance
from schemas.agreement import is_exchanged

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
    specs = governance.subjects()
    kinds = Counter(s.kind for s in specs)
    exchanged = [t for t in schemas.MESSAGE_TYPES if is_exchanged(t)]
    # every type internal; both audits; 2 partners x 8 types released; 2 partners x 7 types sent back (inbound) and
    # accepted (origin): no partner sends its deconfliction alerts; the components' feeds as their policies say
    assert kinds["internal"] == len(schemas.MESSAGE_TYPES) and kinds["audit"] == 2
    assert kinds["partner"] == 2 * len(schemas.MESSAGE_TYPES)
    assert kinds["inbound"] == kinds["origin"] == 2 * len(exchanged) == 14
    assert set(kinds) == {"internal", "audit", "partner", "component", "inbound", "origin"}
    assert not [s for s in specs if "deconfliction" in s.subject and s.kind in ("inbound", "origin")]
    assert res.stdout.count("ok  ") == len(specs)
    for spec in specs:
        assert f"ok  {spec.subject} ({spec.kind}): compatible with released v1" in res.stdout


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
    # and releasing it records the next version for that subject only (once pending releases are recorded)
    before = {spec.subject: len(governance.released_versions(spec.subject, root)) for spec in governance.subjects(root)}
    written = governance.release_all(root)
    track = "liaison.internal.air.track-value"
    assert [track, f"v{before[track] + 1}.avsc"] in [p.split("/")[-2:] for p in written]
    assert governance.release_all(root) == []
    assert _check(root).returncode == 0


def _policies_copy(tmp_path):
    dst = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "deploy" / "policies", dst)
    return dst


def test_a_partner_schema_losing_history_fails_naming_subject_and_field(settings, tmp_path):
    """A policy whose derived schema can no longer read what was released (a field optional in v1 made
    required) fails the gate like an internal schema would."""
    policies = _policies_copy(tmp_path)
    usa = policies / "USA.yaml"
    usa.write_text(usa.read_text().replace("nullable: [affiliation, last_known_area, travel_indicators]",
                                           "nullable: [last_known_area, travel_indicators]"))
    res = subprocess.run([LIAISON, "schemas", "check", "--policies", str(policies)], capture_output=True,
                         text=True, timeout=120, env=os.environ)
    assert res.returncode == 1
    fails = [ln for ln in res.stderr.splitlines() if ln.startswith("FAIL")]
    # the partner's feed, and what is derived from it (give and take): what USA sends us in that shape (inbound),
    # what the ingress guard accepted of it (origin), and our intelligence cell's feed of that
    why = (": incompatible with released v1: field 'affiliation' changed type from null to string (BACKWARD_TRANSITIVE:"
           " the new schema must read records written with every released version)")
    assert fails == [f"FAIL {s}-value{why}" for s in (
        "liaison.partner.usa.intel.foreign-fighter", "liaison.inbound.usa.intel.foreign-fighter",
        "liaison.origin.usa.intel.foreign-fighter", "liaison.component.intel.origin.usa.intel.foreign-fighter")], \
        res.stderr


def test_an_audit_schema_change_is_gated(settings, tmp_path):
    root = _copy_schemas(tmp_path)
    path = root / "audit" / "DecisionAudit.avsc"
    doc = json.loads(path.read_text())
    doc["fields"].append({"name": "operator", "type": "string"})
    path.write_text(json.dumps(doc))
    res = _check(root)
    assert res.returncode == 1
    assert "liaison.audit.decisions-value: incompatible with released v1: field 'operator' was added without " \
           "a default" in res.stderr


def test_register_is_idempotent_and_sets_level(settings):
    first = governance.register_all()
    assert governance.register_all() == first
    from core import serde

    client = serde.registry_client()
    for subject, sid in first.items():
        assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
        assert client.get_latest_version(subject).schema_id == sid
