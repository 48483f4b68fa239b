"""Serializer fields every app's API uses alike."""

from collections.abc import Callable
from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF would turn ``7`` into ``"7"``."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def representation(serializer_class: type[serializers.Serializer]) -> Callable[[Any], dict[str, Any]]:
    """``serializer_class(instance).data`` for a flat serializer, with its fields built only once.

    DRF deep-copies a serializer's declared fields every time one is instantiated, which costs an
    answer as small as sts-token's more than rendering it: about 0.09 ms of CPU per answer in
    process, and with ``.data`` instead a reused hand-out took a median 5 to 10 % more worker CPU
    on the bench's stack (tests/perf/harness.py; 8 to 10 interleaved rounds). The serializer class
    stays what the OpenAPI schema describes; this reads an instance the way its fields do
    (``source``, None kept), through DRF's public field API (``Serializer.fields``,
    ``Field.get_attribute``, ``Field.to_representation``).
    """
    fields = [field for field in serializer_class().fields.values() if not field.write_only]
    nested = [field.field_name for field in fields if isinstance(field, serializers.BaseSerializer)]
    assert not nested, f"flat serializers only, not {nested}"

    def represent(instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field in fields:
            attribute = field.get_attribute(instance)
            data[field.field_name] = None if attribute is None else field.to_representation(attribute)
        return data

    return represent
