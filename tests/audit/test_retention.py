"""The audit log's retention command: old rows go, in bounded batches; recent rows stay."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db


def _rows(user, *, count: int, age: timedelta) -> list[TokenIssuance]:
    created_at = timezone.now() - age
    return TokenIssuance.objects.bulk_create(
        TokenIssuance(
            user=user,
            username=user.username,
            outcome=TokenIssuance.Outcome.REUSED,
            auth_method=TokenIssuance.AuthMethod.JWT,
            prefix=f"user/{user.pk}/",
            created_at=created_at,
        )
        for _ in range(count)
    )


def _prune(*args: str) -> str:
    out = StringIO()
    call_command("prune_token_issuances", *args, stdout=out)
    return out.getvalue()


def test_deletes_only_rows_older_than_the_cutoff(user):
    _rows(user, count=3, age=timedelta(days=91))
    _rows(user, count=2, age=timedelta(days=400))
    kept = _rows(user, count=4, age=timedelta(days=89, hours=23))

    output = _prune("--older-than-days", "90")

    assert "Deleted 5 token issuance(s) created before" in output
    assert sorted(TokenIssuance.objects.values_list("pk", flat=True)) == sorted(row.pk for row in kept)


def test_deletes_in_batches_of_primary_keys(user):
    _rows(user, count=7, age=timedelta(days=31))
    _rows(user, count=1, age=timedelta(days=1))

    with CaptureQueriesContext(connection) as queries:
        output = _prune("--older-than-days", "30", "--batch-size", "3", "--verbosity", "2")

    deletes = [query["sql"] for query in queries if query["sql"].upper().startswith("DELETE")]
    assert len(deletes) == 3  # 3 + 3 + 1, then an empty select ends the loop
    assert all(" IN (" in sql.upper() for sql in deletes)
    assert "Batch 1: deleted 3 (total 3)." in output
    assert "Batch 3: deleted 1 (total 7)." in output
    assert "Deleted 7 token issuance(s)" in output and "in 3 batch(es)" in output
    assert TokenIssuance.objects.count() == 1


def test_rows_survive_their_user(user):
    _rows(user, count=2, age=timedelta(days=10))
    user.delete()

    assert "Deleted 2 token issuance(s)" in _prune("--older-than-days", "7")
    assert not TokenIssuance.objects.exists()


def test_dry_run_counts_and_deletes_nothing(user):
    _rows(user, count=4, age=timedelta(days=8))

    output = _prune("--older-than-days", "7", "--dry-run")

    assert "Would delete 4 token issuance(s)" in output
    assert TokenIssuance.objects.count() == 4


def test_nothing_to_delete_says_so(user):
    _rows(user, count=2, age=timedelta(hours=1))
    assert "Deleted 0 token issuance(s)" in _prune("--older-than-days", "1")
    assert TokenIssuance.objects.count() == 2


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--older-than-days", "0"),
        ("--older-than-days", "-5"),
        ("--older-than-days", "ninety"),
        ("--older-than-days", "30", "--batch-size", "0"),
    ],
)
def test_refuses_a_missing_or_nonsensical_age(user, args):
    _rows(user, count=1, age=timedelta(days=400))
    with pytest.raises(CommandError):
        _prune(*args)
    assert TokenIssuance.objects.count() == 1
