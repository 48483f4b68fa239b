"""Token reuse: concurrent requests of one user make one AssumeRole call, not a stampede."""

from concurrent.futures import ThreadPoolExecutor

from uploads.services import reuse
from uploads.services.reuse import session_policy_build


def test_concurrent_requests_of_one_user_share_one_sts_call(sandbox, settings):
    sandbox.config.faults.configure(latency_ms=300)  # every waiter arrives while the first call is in flight
    policy = session_policy_build(user_id=42)
    key = reuse._cache_key(42, policy)
    before = sandbox.config.faults.snapshot()["issued"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda _: reuse._fresh_or_cached(key, session_name="user-42", policy=policy), range(8))
        )

    assert sandbox.config.faults.snapshot()["issued"] - before == 1
    assert len({result.credentials.access_key_id for result in results}) == 1
    assert sorted(result.reused for result in results) == [False] + [True] * 7


def test_different_users_do_not_share_credentials(sandbox, settings):
    keys = {}
    for user_id in (1, 2):
        policy = session_policy_build(user_id=user_id)
        result = reuse._fresh_or_cached(
            reuse._cache_key(user_id, policy), session_name=f"user-{user_id}", policy=policy
        )
        keys[user_id] = result.credentials.access_key_id
        assert not result.reused
    assert keys[1] != keys[2]


def test_cached_credentials_are_encrypted_at_rest(sandbox, settings):
    from django.core.cache import cache

    policy = session_policy_build(user_id=5)
    key = reuse._cache_key(5, policy)
    credentials = reuse._fresh_or_cached(key, session_name="user-5", policy=policy).credentials
    blob = cache.get(key)
    assert credentials.access_key_secret.encode() not in blob
    assert credentials.security_token.encode() not in blob
