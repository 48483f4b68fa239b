"""The one seam around Alibaba Cloud's SDKs: the only product code that imports one.

``sts`` (AssumeRole, GetCallerIdentity), ``oss`` (the server's own object calls), ``oss_admin`` (bucket
configuration and the doctor's probe), ``ram`` (users, policies, roles) talk to Alibaba Cloud; ``policy``
and ``post_policy`` build the session policy and the PostObject form, pure. Every call takes typed
inputs, returns frozen dataclasses and raises one error type, ``aliyun.errors.AliyunError``.
"""
