# syntax=docker/dockerfile:1
# One image for the stack's Python processes other than the function: presign and score
# under gunicorn, the web page, the dispatcher and the one-shot resource bootstrap.
# docker-compose.yml gives each its command. No torch here: none of them runs the model.
# Build context: the repository root (`docker build -f docker/services.Dockerfile .`).
FROM python:3.12.13-slim-bookworm

# A package index mirror for pip, when the build is given one (compose passes these from the
# environment, make deploy as SAM DockerBuildArgs); unset, pip uses its default index.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app

# Dependencies first, a layer that stays cached until pyproject.toml changes: the project's
# pinned requirements plus gunicorn, at the versions pyproject.toml pins.
COPY pyproject.toml scripts/pins.py /tmp/build/
RUN python /tmp/build/pins.py --base gunicorn > /tmp/build/requirements.txt \
 && pip install -r /tmp/build/requirements.txt \
 && rm -rf /tmp/build \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin divescore

# The code runs from /app (on PYTHONPATH) rather than installed, so that the web page finds
# web/ beside the standins package, as it does in the work tree.
WORKDIR /app
COPY divescore/ divescore/
COPY services/ services/
COPY standins/ standins/
COPY web/ web/

USER 10001
EXPOSE 8000 8001 8002
# Each compose service names its own command; alone, the image serves the jobs API.
CMD ["python", "-m", "standins.serving", "jobs_api"]
