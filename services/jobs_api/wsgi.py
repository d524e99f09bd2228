"""gunicorn entry point: ``gunicorn services.jobs_api.wsgi:app`` (see ``standins.serving``)."""

from divescore.settings import load
from services.jobs_api import create_app

settings = load()
# Its answers' URLs name the configured address, never the Host a request claims.
app = create_app(settings, public_url=settings.presign_api_url)
