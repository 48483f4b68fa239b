import pytest


@pytest.mark.django_db
def test_admin_pages_name_an_inline_icon(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert '<link rel="icon" href="data:,">' in body
    assert "Django administration" in body  # still Django's own base_site
