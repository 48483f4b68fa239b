"""The API's JSON parser: DRF's, bounded, so no body can turn into anything but a 400.

DRF's parser lets a ``RecursionError`` escape for deeply nested input (a 4 KB body of 2,000 nested
arrays was a 500 on every JSON endpoint) and reads the body whatever its size (Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` guards ``request.body`` and forms, not the stream DRF reads).
"""

import io
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32  # no request body of this API nests more than 2 levels


def _nested_deeper_than(value: Any, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            pending.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return False


class JSONParser(parsers.JSONParser):
    """400 ``parse_error`` for malformed JSON (as DRF) and for JSON nested more than ``MAX_DEPTH``
    levels; 413 ``request_too_large`` for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1 if limit is not None else -1)
        if limit is not None and len(body) > limit:
            # As when Django reads request.body itself: 413 request_too_large (core/exceptions.py).
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.") from None
        if _nested_deeper_than(data, MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.")
        return data
