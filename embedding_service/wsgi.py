"""gunicorn entry point: ``gunicorn -c scripts/gunicorn.conf.py embedding_service.wsgi:app``."""

from embedding_service.app import create_app

app = create_app()
