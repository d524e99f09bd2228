"""gunicorn entry point: ``gunicorn score_service.wsgi:app`` (see ``divescore.serving``)."""

from divescore.settings import load
from score_service import create_app

app = create_app(load())
