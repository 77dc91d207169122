"""The curation fixtures (params with paths under tmp_path, document rows from literal texts, installed sources)."""

from tests.curate.conftest import doc, params_for, site_python, write_docs  # noqa: F401
