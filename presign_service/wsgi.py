"""gunicorn entry point: ``gunicorn presign_service.wsgi:app`` (see ``divescore.serving``)."""

from divescore.settings import load
from presign_service import create_app

app = create_app(load())
