# The second way to run Dashin (the first is ./run): one image for the api, worker, scheduler and
# migrate services of compose.yaml. Build: docker build -t dashin .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DASHIN_ENV=production \
    DASHIN_LOG_FORMAT=json \
    DASHIN_HOME=/home/dashin/.dashin

# psql and pg_dump for `dashin psql` and `dashin backup`
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 dashin

WORKDIR /src
COPY . .
RUN pip install . && rm -rf /src

USER dashin
WORKDIR /home/dashin
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["dashin", "api", "--host", "0.0.0.0", "--port", "8000"]
