"""Helpers that migrations share (kept stable: applied migrations import them)."""

from collections.abc import Callable, Iterable
from typing import Any


def content_types_move(models: Iterable[str], source: str, target: str) -> Callable[[Any, Any], None]:
    """A ``RunPython`` function that moves ``models``' content types from app label ``source`` to
    ``target`` when models change apps (SeparateDatabaseAndState): each keeps its row, and with it the
    permissions that point at it; a fresh one that post_migrate made meanwhile under ``target`` holds
    nothing and goes."""
    names = list(models)

    def move(apps: Any, schema_editor: Any) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        for model in names:
            kept = ContentType.objects.filter(app_label=source, model=model).first()
            if kept is None:
                continue
            ContentType.objects.filter(app_label=target, model=model).delete()
            kept.app_label = target
            kept.save(update_fields=["app_label"])

    return move
