"""Schema changes to the audit log must not stop issuance while they run on a big table."""

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

SEARCH_INDEXES = {
    "issuance_request_created",
    "issuance_username_created",
    "issuance_key_created",
    "issuance_ip_created",
}


@pytest.mark.django_db(transaction=True)  # migrations here run outside a test transaction, as in production
def test_search_index_migration_never_blocks_writers_on_postgresql():
    call_command("migrate", "uploads", "0003", verbosity=0)
    try:
        with CaptureQueriesContext(connection) as queries:
            call_command("migrate", "uploads", "0004", verbosity=0)
    finally:
        call_command("migrate", "uploads", verbosity=0)
    index_statements = [query["sql"] for query in queries if re.match(r"(CREATE|DROP) INDEX", query["sql"])]

    if connection.vendor == "postgresql":
        # The new indexes exist before an old one goes, and no statement takes the table's write lock.
        assert [statement.split()[0] for statement in index_statements] == ["CREATE"] * 4 + ["DROP"] * 4
        assert all(" CONCURRENTLY " in statement for statement in index_statements)
    else:
        assert not any("CONCURRENTLY" in statement for statement in index_statements)
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "uploads_tokenissuance")
    assert SEARCH_INDEXES <= set(indexes)
    assert not any(info["columns"] == ["client_ip"] for info in indexes.values())
