"""gunicorn entry point: ``gunicorn -c scripts/gunicorn.conf.py llm_service.wsgi:app``."""

from llm_service.app import create_app

app = create_app()
