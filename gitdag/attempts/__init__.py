"""The life of one attempt, shared by `gitdag run` (supervisor/) and `gitdag work` (remote/)."""
