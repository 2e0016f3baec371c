"""A template trigml plugin: one algorithm and one backend."""
