"""Recovery scenarios: the Context they work with, the judges, the registry, the runner, the
known kernel bugs, and the scenarios themselves.
"""
