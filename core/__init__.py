"""Cross-cutting web and API plumbing that every app may use and that uses no app.

``exceptions`` (one JSON error shape), ``requests`` (client address, auth method), ``schema``
(OpenAPI helpers), ``middleware`` (request ids in headers and logs), ``health`` (probes) and
``aliyun_names`` (Alibaba Cloud naming rules, shared with the sandbox).
"""
