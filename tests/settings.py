"""Settings for the test run: ``config.settings.test``, fed a test environment.

Values already in the environment win, so CI can run the same suite on PostgreSQL and Redis
with DATABASE_URL and REDIS_URL set.
"""

import os

TEST_ENVIRONMENT = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
    "DJANGO_JWT_SIGNING_KEY": "test-jwt-signing-key-not-for-production",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    "DJANGO_LOG_FORMAT": "text",
    "ALIYUN_ACCESS_KEY_ID": "test-ram-user-key",
    "ALIYUN_ACCESS_KEY_SECRET": "test-ram-user-secret",
    "ALIYUN_STS_ROLE_ARN": "acs:ram::1234567890123456:role/oss-uploader",
    "ALIYUN_STS_ENDPOINT": "127.0.0.1:1",  # replaced by the sandbox fixture's real port
    "ALIYUN_STS_CONNECT_TIMEOUT_MS": "1000",
    "ALIYUN_STS_READ_TIMEOUT_MS": "2000",
    "ALIYUN_OSS_BUCKET": "avatars-test",
    "ALIYUN_OSS_REGION": "cn-hangzhou",
    "ALIYUN_OSS_ENDPOINT": "http://127.0.0.1:1",
    "THROTTLE_STS_TOKEN": "1000/min",
    "THROTTLE_LOGIN": "1000/min",
    "THROTTLE_POST_POLICY": "1000/min",
    "OSS_EVENTS_DOCTOR_WAIT_SECONDS": "0",  # the doctor skips its event check unless a test turns it on
}
for _name, _value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

from config.settings.test import *  # noqa: E402,F403
