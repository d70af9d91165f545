# The image origin under gunicorn, as an unprivileged user (docs/deployment.md#container-image).
#
#   docker build -t image-origin .
#   docker run -p 8000:8000 image-origin      # the bundled samples: /image/rocket.jpg?w=400
#
# BASE: any Debian-like image with python3 3.11 (requirements.txt is pinned for it) and its venv
# module; CI builds on a debootstrapped bookworm, having no registry to pull from
# (tests/test_container.py). WHEELS: a directory of the build context holding a wheel for every
# pin of requirements.txt (`pip download ... -d wheels`, in the docs): pip installs from it alone.
ARG BASE=python:3.11-slim-bookworm

# The venv is built in a stage of its own, so that neither the wheels nor pip's leftovers are a
# layer of the image; /opt/venv is the same path in both stages, which a venv needs.
FROM ${BASE} AS venv
ARG WHEELS=
# With WHEELS unset the second source is requirements.txt again: COPY has no optional source.
COPY requirements.txt ${WHEELS:-requirements.txt} /tmp/install/
RUN python3 -m venv /opt/venv \
 && if [ -n "$WHEELS" ]; then set -- --no-index --find-links /tmp/install; fi \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -q "$@" \
      -r /tmp/install/requirements.txt

FROM ${BASE}
# A fixed uid, named numerically in USER, so that an orchestrator can verify it is not root
# (Kubernetes' runAsNonRoot) and a mounted cache volume can be chowned to it ahead of time.
RUN groupadd --gid 10001 origin \
 && useradd --uid 10001 --gid origin --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin origin \
 && mkdir -p /var/cache/image-origin \
 && chown origin:origin /var/cache/image-origin
COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
# Only what runs: the package, the samples it serves by default, gunicorn's settings.
COPY requirements.txt gunicorn.conf.py ./
COPY samples/ samples/
COPY proxy/ proxy/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    PROXY_CACHE_DIR=/var/cache/image-origin
# The app's files stay root's (the user reads, never writes them), so bytecode is compiled here,
# once, instead of on every start.
RUN python3 -m compileall -q proxy
# The variants survive a new container; with no volume given, docker makes an anonymous one.
VOLUME /var/cache/image-origin
USER 10001:10001
EXPOSE 8000
# No curl in slim images: the venv's python asks /healthz on the port gunicorn binds.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# gunicorn.conf.py binds loopback for `make serve`; a container answers on every interface, on $PORT.
# Serving the bundled samples (no PROXY_SOURCE, no PROXY_IMAGE_ROOT), it is the demo `make serve`
# is, playground at / included; any configuration of originals turns the playground off unless
# PROXY_PLAYGROUND says otherwise, so a production deployment does not expose it by default.
# exec: gunicorn is PID 1 and receives docker's SIGTERM itself, finishing in-flight requests.
CMD if [ -z "${PROXY_SOURCE}${PROXY_IMAGE_ROOT}" ]; then export PROXY_PLAYGROUND="${PROXY_PLAYGROUND:-1}"; fi; \
    exec gunicorn -c gunicorn.conf.py --bind "0.0.0.0:${PORT}" "proxy.app:create_app()"
