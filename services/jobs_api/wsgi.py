"""gunicorn entry point: ``gunicorn services.jobs_api.wsgi:app`` (see ``standins.serving``)."""

from divescore.settings import load
from services.jobs_api import create_app

app = create_app(load())
