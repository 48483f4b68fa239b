"""Settings for the server's identity without an AccessKey, pointed at a sandbox (tests/conftest.py's
``keyless_sandbox`` for RRSA over HTTPS, any sandbox for its credentials URI)."""

from sandbox.server import Sandbox


def use_rrsa(settings, sandbox: Sandbox, **extra) -> None:
    """No AccessKey; the server's identity is the sandbox's server role through RRSA."""
    config = sandbox.config
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""
    settings.ALIYUN_STS_ENDPOINT = sandbox.sts_endpoint
    settings.ALIYUN_OSS_ENDPOINT = sandbox.oss_endpoint
    settings.ALIYUN_STS_HTTPS_ENDPOINT = sandbox.sts_tls_endpoint
    settings.ALIBABA_CLOUD_ROLE_ARN = config.server_role_arn
    settings.ALIBABA_CLOUD_OIDC_PROVIDER_ARN = config.oidc_provider_arn
    settings.ALIBABA_CLOUD_OIDC_TOKEN_FILE = str(config.oidc_token_file)
    for name, value in extra.items():
        setattr(settings, name, value)


def use_credentials_uri(settings, sandbox: Sandbox, query: str = "") -> None:
    """No AccessKey; the server's identity comes from the sandbox's credentials URI (plain http)."""
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""
    settings.ALIYUN_STS_ENDPOINT = sandbox.sts_endpoint
    settings.ALIYUN_OSS_ENDPOINT = sandbox.oss_endpoint
    settings.ALIBABA_CLOUD_CREDENTIALS_URI = f"http://{sandbox.sts_endpoint}/__sandbox__/credentials{query}"
