"""Why one Avro schema cannot read data written with another, field by field (Avro schema resolution).

Pure: used by `liaison schemas check` (deploy.governance) to explain the registry's verdict, and by the
forwarder to refuse a derived schema that its subject's history cannot accept.
"""

from __future__ import annotations

from schemas.named import NamedTypes

__all__ = ["explain"]

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def _resolve_named(t, names: NamedTypes):
    """The definition a reference means (by full or short name: references may use either), else `t`."""
    if isinstance(t, str):
        return names.lookup(t) or t
    return t


def _kind(t) -> str:
    if isinstance(t, list):
        return "union"
    if isinstance(t, dict):
        return t["type"] if t["type"] in ("record", "enum", "fixed", "array", "map") else _kind(t["type"])
    return t


def _label(t) -> str:
    k = _kind(t)
    if k in ("record", "enum", "fixed") and isinstance(t, dict):
        return f"{k} {t['name']}"
    if k == "union":
        return "union [" + ", ".join(_label(b) for b in t) + "]"
    if k == "array":
        return f"array<{_label(t['items'])}>"
    return k


def _can_read(reader, writer, rn: NamedTypes, wn: NamedTypes) -> bool:
    return not _diffs(reader, writer, "", rn, wn)


def _diffs(reader, writer, path: str, rn: NamedTypes, wn: NamedTypes) -> list[str]:
    reader, writer = _resolve_named(reader, rn), _resolve_named(writer, wn)
    rk, wk = _kind(reader), _kind(writer)
    where = path or "<root>"
    if wk == "union":
        out = []
        for branch in writer:
            if rk == "union":
                if not any(_can_read(rb, branch, rn, wn) for rb in reader):
                    out.append(f"field '{where}': the released {_label(branch)} branch is no longer accepted")
            else:
                out += _diffs(reader, branch, path, rn, wn)
        return out
    if rk == "union":
        if any(_can_read(rb, writer, rn, wn) for rb in reader):
            return []
        return [f"field '{where}': released type {_label(writer)} fits no branch of {_label(reader)}"]
    if rk != wk:
        if wk in _PROMOTIONS and rk in _PROMOTIONS[wk]:
            return []
        return [f"field '{where}' changed type from {_label(writer)} to {_label(reader)}"]
    if rk == "record":
        out = []
        wfields = {f["name"]: f for f in writer["fields"]}
        for f in writer["fields"]:
            for alias in f.get("aliases", []):
                wfields.setdefault(alias, f)
        for f in reader["fields"]:
            sub = f"{path}.{f['name']}" if path else f["name"]
            match = wfields.get(f["name"]) or next((wfields[a] for a in f.get("aliases", []) if a in wfields), None)
            if match is None:
                if "default" not in f:
                    out.append(f"field '{sub}' was added without a default, so records written with the "
                               f"released version cannot be read")
            else:
                out += _diffs(f["type"], match["type"], sub, rn, wn)
        return out
    if rk == "enum":
        lost = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if lost and "default" not in reader:
            return [f"field '{where}': enum {reader['name']} lost symbol(s) {', '.join(lost)} and has no default"]
        return []
    if rk == "array":
        return _diffs(reader["items"], writer["items"], f"{path}[]", rn, wn)
    if rk == "map":
        return _diffs(reader["values"], writer["values"], f"{path}{{}}", rn, wn)
    if rk == "fixed" and reader.get("size") != writer.get("size"):
        return [f"field '{where}': fixed size changed from {writer.get('size')} to {reader.get('size')}"]
    return []


def explain(new: dict, old: dict) -> list[str]:
    """Why `new` cannot read data written with `old` (Avro schema resolution), one line per field."""
    rn, wn = NamedTypes(new), NamedTypes(old)
    return _diffs(new, old, "", rn, wn)
