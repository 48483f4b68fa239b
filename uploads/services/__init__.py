"""Writes of the uploads app, one module per subject:

- ``audit``: the one writer of token issuance audit rows (granted, reused, refused, failed);
- ``reuse``: a user's STS credentials, reused from the shared cache or fetched once (single flight);
- ``sts_token``: credentials for ``POST /api/uploads/sts-token/`` and the stock-format endpoints;
- ``post_policy``: signed PostObject forms;
- ``credential_urls``: secret URLs a stock mobile credential provider can GET;
- ``quota``: what a user's folders hold, reservations for forms, and the counts that correct it.
"""
