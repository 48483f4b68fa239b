"""Text that any supported database stores as given: what audit rows copy from a request."""

NUL_STAND_IN = "\N{REPLACEMENT CHARACTER}"


def storable_text(value: str, max_length: int) -> str:
    """``value`` cut to ``max_length`` characters, with NUL characters replaced by U+FFFD.

    PostgreSQL's text types cannot hold NUL ("A string literal cannot contain NUL (0x00)
    characters"), while SQLite can: a request that names a key with a NUL in it must still leave
    its audit row, on either. The stand-in shows a reviewer where the NUL was.
    """
    return value.replace("\x00", NUL_STAND_IN)[:max_length]
