"""The pull-request comment of a stack's preview (``make pr-comment``, ``make pr-preview``).

- ``report``: the preview as reviewers need it, from the engine's report (``ops.engine``);
- ``diff``: leaves of a state by path, what differs between two states, drift;
- ``comment``: the comment's sections, its size budget and its Markdown;
- ``__main__``: the command line.
"""
