"""A stack's releases: ``make history``, ``make rollback``, ``make up`` with automatic rollback.

- ``model``: releases numbered from the stack's update history, their tags, the rules of
  a rollback and of the automatic rollback, Kubernetes' verdict on a failed rollout;
- ``promotion``: which release of one stack to promote to another, its image, the refusals, the provenance;
- ``command``: the actions, each returning a typed result, and how each is printed;
- ``__main__``: the command line (``python -m ops.releases``).
"""
