"""The error every sandbox OSS handler raises: answered as OSS's XML ``<Error>`` by ``sandbox.oss``."""


class OssError(Exception):
    """An OSS error answer: code, message, HTTP status and extra XML elements."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra
