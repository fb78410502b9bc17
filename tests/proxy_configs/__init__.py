"""A corpus of LiteLLM proxy ``config.yaml`` files, one per kind of content real proxy files carry.

Written for costrouter's tests (none is copied from another repository). Every secret and
endpoint is an ``os.environ/`` reference the tests set.
"""
