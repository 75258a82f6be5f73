"""gunicorn entry point: ``gunicorn -c scripts/gunicorn.conf.py tts_service.wsgi:app``."""

from tts_service.app import create_app

app = create_app()
