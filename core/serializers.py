"""Serializer fields every app's API uses alike."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF would turn ``7`` into ``"7"``."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
