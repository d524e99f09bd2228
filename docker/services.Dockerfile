# One image for the stack's Python processes other than the function: presign and score
# under gunicorn, the web page, the dispatcher and the one-shot resource bootstrap.
# docker-compose.yml gives each its command. No torch here: none of them runs the model.
# Build context: the repository root (`docker build -f docker/services.Dockerfile .`).
# The base image is a build argument so that a machine without a registry can pass a local
# stand-in (python, pip and useradd on PATH).
ARG PYTHON_IMAGE=python:3.12.13-slim-bookworm
FROM ${PYTHON_IMAGE}

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
# The CA bundle for pip, when given as the secret `pip_cert`, is mounted for this step only.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python /tmp/build/pins.py --base gunicorn > /tmp/build/requirements.txt \
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
