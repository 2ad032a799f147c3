# The ksearch app (Streamlit) and CLI: the light runtime of pyproject.toml (ONNX Runtime, no torch).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KSEARCH_HOME=/data/ksearch HF_HUB_OFFLINE=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY encoder ./encoder
COPY ingest ./ingest
COPY retrieval ./retrieval
COPY search_ui ./search_ui
COPY ksearch ./ksearch
RUN pip install . \
    && useradd --create-home --uid 1000 ksearch && mkdir -p /data/ksearch && chown ksearch /data/ksearch
COPY sample_data ./sample_data
COPY .streamlit ./.streamlit

USER ksearch
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "search_ui/app.py", "--server.port", "8501", "--server.address", "0.0.0.0", "--server.headless", "true"]
