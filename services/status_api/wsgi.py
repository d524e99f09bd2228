"""gunicorn entry point: ``gunicorn services.status_api.wsgi:app`` (see ``standins.serving``)."""

from divescore.settings import load
from services.status_api import create_app

app = create_app(load())
