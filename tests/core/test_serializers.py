"""core.serializers.representation: what the serializer's ``.data`` gives, for what the API hands out."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.serializers import representation
from uploads.apis import StsTokenApi
from uploads.services.sts_token import UploadCredentials

text = st.text(max_size=40)


@given(
    values=st.tuples(text, text, text, text, text, text, text),
    expiration=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_sts_token_answer_is_the_output_serializers_data(values, expiration, offset_minutes):
    key_id, secret, token, bucket, region, endpoint, prefix = values
    credentials = UploadCredentials(
        key_id,
        secret,
        token,
        expiration.astimezone(timezone(timedelta(minutes=offset_minutes))),
        bucket,
        region,
        endpoint,
        prefix,
    )
    expected = StsTokenApi.OutputSerializer(credentials).data
    assert representation(StsTokenApi.OutputSerializer)(credentials) == expected
    assert list(representation(StsTokenApi.OutputSerializer)(credentials)) == list(expected)


def test_none_stays_none():
    class Thing:
        accessKeyId = None

    class OneField(StsTokenApi.OutputSerializer.__base__):
        from rest_framework import serializers

        accessKeyId = serializers.CharField()

    assert representation(OneField)(Thing()) == {"accessKeyId": None}


def test_write_only_fields_are_left_out_as_data_leaves_them_out():
    from rest_framework import serializers

    class Thing:
        accessKeyId, secret = "STS.id", "never shown"

    class WithSecret(serializers.Serializer):
        accessKeyId = serializers.CharField()
        secret = serializers.CharField(write_only=True)

    assert representation(WithSecret)(Thing()) == WithSecret(Thing()).data == {"accessKeyId": "STS.id"}
