FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml constraints.txt README.md ./
COPY syndarix_sync ./syndarix_sync
COPY integrations ./integrations
COPY issues ./issues
COPY templates ./templates
COPY manage.py Procfile ./
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -c constraints.txt -e .
USER nobody
EXPOSE 8000
