"""Deep multi-task architectures; the public names live in ``polytask.deep.architectures``."""
