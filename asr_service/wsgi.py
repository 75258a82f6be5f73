"""gunicorn entry point: ``gunicorn -c scripts/gunicorn.conf.py asr_service.wsgi:app``."""

from asr_service.app import create_app

app = create_app()
