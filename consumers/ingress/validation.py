"""The model's validators for the fields a partner sends: partial models of :mod:`schemas.models`. No Kafka.

A partner sends the exchange format of a type (:func:`release.exchange.inbound_schema`): our record minus the
fields its policy drops (top level and nested: ``subject.name``, ``last_known_area.radius_km``), sometimes with a
field made optional (``nullable:`` in the policy). The full model would refuse every such record for a missing
field, so the guard validates with a **partial model** built once per type from the inbound schema:

* each field present in the inbound schema keeps its model annotation and constraints (``Field(ge=...)``,
  string bounds and patterns, list bounds, ``AfterValidator``s); a field the model requires but the inbound
  schema makes optional accepts null (the schema says the partner may leave it out);
* a nested record is validated by the partial model of its own present fields, recursively; a record (top level
  or nested) whose fields are all present is validated by the model class itself, unchanged;
* the model-level validators (``@model_validator(mode="after")``: start before end, floor below ceiling, date of
  birth in the past) run on the partial instance; a validator that reads a field the partner does not send
  (AttributeError) does not apply. Any other kind of model validator makes the build fail at start.

The label is sent whole (the inbound schema carries the full SecurityLabel), so it is checked by SecurityLabel.
"""

from __future__ import annotations

import copy
import functools
import typing
from typing import Any, Optional

from pydantic import BaseModel, create_model, model_validator

from schemas.models import MODELS
from schemas.models.fields import _Model

__all__ = ["partial_model", "validator_for"]


def _avro_types(avro_type: Any) -> list:
    return avro_type if isinstance(avro_type, list) else [avro_type]


def _record_of(avro_type: Any) -> dict | None:
    """The record schema inside a field type (T, ["null", T], array of T), or None."""
    for t in _avro_types(avro_type):
        if isinstance(t, dict):
            if t.get("type") == "record":
                return t
            if t.get("type") == "array" and isinstance(t.get("items"), dict) and t["items"].get("type") == "record":
                return t["items"]
    return None


def _nullable(avro_type: Any) -> bool:
    return "null" in _avro_types(avro_type)


def _replace_model(annotation: Any, old: type, new: type) -> Any:
    """``annotation`` with the model class ``old`` replaced by ``new`` (T, Optional[T], list[T])."""
    if annotation is old:
        return new
    origin = typing.get_origin(annotation)
    if origin is list:
        return list[_replace_model(typing.get_args(annotation)[0], old, new)]
    if origin is typing.Union:
        return typing.Union[tuple(_replace_model(a, old, new) for a in typing.get_args(annotation))]
    return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _wrap_after(func):
    @functools.wraps(func)
    def after(self):
        try:
            return func(self)
        except AttributeError:  # reads a field the partner does not send: not applicable
            return self
    return after


def partial_model(model: type[BaseModel], record_schema: dict, name: str | None = None) -> type[BaseModel]:
    """The model of ``model`` restricted to the fields of the Avro record ``record_schema`` (see module doc)."""
    avro_fields = {f["name"]: f["type"] for f in record_schema["fields"]}
    unknown = set(avro_fields) - set(model.model_fields)
    if unknown:
        raise ValueError(f"{model.__name__}: inbound schema fields {sorted(unknown)} are not in the model")
    fields: dict[str, Any] = {}
    changed = set(avro_fields) != set(model.model_fields)
    for fname, avro_type in avro_fields.items():
        info = model.model_fields[fname]
        annotation = info.annotation
        sub = _record_of(avro_type)
        inner = _model_in(annotation)
        if sub is not None and inner is not None:
            part = partial_model(inner, sub, f"{name or model.__name__}_{fname}")
            if part is not inner:
                annotation, changed = _replace_model(annotation, inner, part), True
        new_info = copy.copy(info)
        if _nullable(avro_type) and info.is_required():
            annotation, changed = Optional[annotation], True
            new_info = copy.copy(info)
            new_info.default = None
        fields[fname] = (annotation, new_info)
    if not changed:
        return model
    validators = {}
    for vname, dec in model.__pydantic_decorators__.model_validators.items():
        if dec.info.mode != "after":
            raise ValueError(f"{model.__name__}.{vname}: a {dec.info.mode!r} model validator cannot be applied to "
                             f"a partial record")
        validators[vname] = model_validator(mode="after")(_wrap_after(dec.func))
    return create_model(name or f"Inbound{model.__name__}", __base__=_Model, __validators__=validators, **fields)


def validator_for(type_name: str, inbound_schema: dict):
    """``validate(record) -> None`` (raises pydantic.ValidationError): the partial model of ``type_name`` for
    the inbound schema a partner sends it in."""
    model = partial_model(MODELS[type_name], inbound_schema, f"Inbound{type_name}")
    return model.model_validate
