"""Production (``DJANGO_DEBUG`` off): the shared settings, no sandbox, and a start that refuses an
environment with any secret or required value missing, naming all of them at once. The AccessKey pair is
not required when a credentials provider gives the server its identity (RRSA, an ECS RAM role or a
credentials URI: docs/operating/keyless.md); uploads.E040 refuses a start with neither."""

from core.aliyun_names import ACCESS_KEY, server_identity_sources

from .base import *  # noqa: F403
from .base import REQUIRED_IN_PRODUCTION, env, problems, stop_if_problems

if not DEBUG:  # noqa: F405 -- a production module named directly with DJANGO_DEBUG=1 stays a development run
    _provider_instead_of_key = (
        server_identity_sources(
            access_key_id=ALIYUN_ACCESS_KEY_ID,  # noqa: F405
            role_arn=ALIBABA_CLOUD_ROLE_ARN,  # noqa: F405
            oidc_provider_arn=ALIBABA_CLOUD_OIDC_PROVIDER_ARN,  # noqa: F405
            oidc_token_file=ALIBABA_CLOUD_OIDC_TOKEN_FILE,  # noqa: F405
            ecs_metadata=ALIBABA_CLOUD_ECS_METADATA,  # noqa: F405
            credentials_uri=ALIBABA_CLOUD_CREDENTIALS_URI,  # noqa: F405
        )[:1]
        not in ([], [ACCESS_KEY])
    )
    problems[:0] = [
        f"  {name:<26} {meaning}"
        for name, meaning in REQUIRED_IN_PRODUCTION.items()
        if not env.str(name, default="")
        and not (_provider_instead_of_key and name.startswith("ALIYUN_ACCESS_KEY_"))
    ]
stop_if_problems()
