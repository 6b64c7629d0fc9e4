FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY . .
# A DATABASE_URL keeps settings from starting the embedded server at build time.
RUN SECRET_KEY=collectstatic DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput

# The service runs unprivileged. The code and the static files collected above
# belong to root and are only read; at run time nothing is written but logs (to
# stdout) and gunicorn's heartbeat files (in /tmp). The id is numeric so that
# Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
USER 10001:10001

# gunicorn, when clients reach it directly (docker-compose.yml puts nginx in
# front; docs/production.md): threaded workers, so a client that sends half a
# request holds one of 4 threads, not a whole worker (3 x 4 such clients still
# stall it: only a buffering proxy stops them). With threads, --timeout no
# longer bounds a request (exports run up to EXPORT_TIMEOUT_MS); it restarts a
# worker whose main loop hangs. Replace GUNICORN_CMD_ARGS to change them all.
ENV GUNICORN_CMD_ARGS="--workers 3 --worker-class gthread --threads 4 --timeout 60 --no-control-socket --access-logfile -"
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000"]
