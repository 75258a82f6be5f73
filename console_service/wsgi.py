"""gunicorn entry point: ``gunicorn -c scripts/gunicorn.conf.py console_service.wsgi:app``."""

from console_service.app import create_app

app = create_app()
