"""A local Alibaba Cloud STS + OSS that verify signatures and enforce policies.

It is to Alibaba Cloud what MinIO is to S3 for this project: `manage.py sandbox`
serves it, and the tests point the official SDKs at it.
"""
