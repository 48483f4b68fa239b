"""Schema changes to the audit log must not stop issuance while they run on a big table."""

import re

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
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
        call_command(
            "migrate", verbosity=0
        )  # every app: going back to uploads 0003 unapplied later apps' too
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


@pytest.mark.django_db(transaction=True)
def test_search_index_migration_can_run_again_after_stopping_half_way():
    """One index finished, one CONCURRENTLY build interrupted (PostgreSQL leaves it INVALID)."""
    call_command("migrate", "uploads", "0003", verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute('CREATE INDEX "issuance_username_created" ON "uploads_tokenissuance" ("username")')
            if connection.vendor == "postgresql":
                for outcome in ("issued", "issued"):
                    cursor.execute(
                        "INSERT INTO uploads_tokenissuance (created_at, username, outcome, auth_method, prefix,"
                        " role_session_name, access_key_id, sts_request_id, error_code, user_agent, request_id)"
                        " VALUES (now(), 'u', %s, 'jwt', 'user/1/', '', '', '', '', '', '')",
                        [outcome],
                    )
                with pytest.raises(IntegrityError):  # a failed build: the index stays behind, INVALID
                    cursor.execute(
                        'CREATE UNIQUE INDEX CONCURRENTLY "issuance_request_created" ON "uploads_tokenissuance" ("outcome")'
                    )
        call_command("migrate", "uploads", "0004", verbosity=0)
    finally:
        call_command(
            "migrate", verbosity=0
        )  # every app: going back to uploads 0003 unapplied later apps' too

    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "uploads_tokenissuance")
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = 'issuance_request_created' AND i.indisvalid AND NOT i.indisunique"
            )
            assert cursor.fetchone() == (1,)  # built again, as the migration defines it
    assert SEARCH_INDEXES <= set(indexes)
