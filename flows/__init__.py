"""Prefect flows: compose the stages of `tasks/`; no logic of their own."""
