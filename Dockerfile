# tierdesk: one image for every process (`tierdesk run`, `tierdesk worker`, `tierdesk db upgrade`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 tierdesk
WORKDIR /app

COPY pyproject.toml setup.py README.md ./
COPY bot ./bot
COPY channels ./channels
COPY crm_store ./crm_store
COPY nlu ./nlu
COPY config ./config
RUN pip install . && rm -rf /app/*

USER tierdesk
WORKDIR /home/tierdesk
# The NLU model is trained on first start into the state folder (a volume keeps it across restarts).
ENV TIERDESK_STATE_DIR=/home/tierdesk/state TIERDESK_NLU__MODEL_PATH=/home/tierdesk/state/nlu-model.joblib
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)" || exit 1
CMD ["tierdesk", "run"]
