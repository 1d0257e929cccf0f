"""The BadNets baseline: read this folder first. Tensors in, tensors out: no plots, no widgets, and files only
through ``_io``.

Reading order: ``config`` (Attack, Budget: every default and every check) → ``data`` (uint8 image tensors) →
``triggers`` (the pattern) → ``poison`` (which training images carry it, and what label they get: the attack) →
``models`` (the BadNet CNN) → ``training`` (fit, evaluate) → ``metrics`` → ``pipeline`` (prepare → train →
evaluate → Result; saving a run) → ``checkpoints`` (a model to and from a file).
"""
