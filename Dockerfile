# The fseflow worker image, used by docker-compose.yml (`docker build -t fseflow .`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
RUN pip install . && useradd --create-home fseflow

USER fseflow
WORKDIR /home/fseflow
# Compile the numba kernels into the cache (~/.cache/fseflow) at build time: without this, every
# new container spends about a minute compiling before it liquidates its first file.
RUN fseflow liquidate /src/tests/data/b2-example-v1.b2 --beneficiaries /src/tests/data/example-beneficiaries.csv \
        --professionals /src/tests/data/example-professionals.csv --out /tmp/warmup.jsonl --quiet \
    && rm /tmp/warmup.jsonl

CMD ["fseflow", "worker"]
