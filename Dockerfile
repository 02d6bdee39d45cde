# DIGITS Studio for a class: the dashboard and its job scheduler in one container, on a GPU.
#   docker compose up -d         (see compose.yaml and the README's "Hosting" section)
# The CUDA runtime base gives the driver-facing libraries; PyTorch's wheels bring their own
# CUDA and cuDNN. Not built on the machine this was written on (no Docker there).
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STUDIO_HOME=/workspace \
    PATH=/opt/venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev tini \
        libgl1 libglib2.0-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
WORKDIR /app
COPY requirements.txt ./
RUN pip install --upgrade pip && pip install -r requirements.txt
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY trt ./trt
COPY dashboard ./dashboard
COPY .streamlit ./.streamlit
COPY docker/entrypoint.sh /usr/local/bin/studio-entrypoint
RUN pip install --no-deps -e . && chmod 0755 /usr/local/bin/studio-entrypoint

# A user of its own, never root; the workspace (studio.db, datasets, jobs) is a volume it owns.
RUN useradd --create-home --uid 10001 studio \
 && mkdir -p /workspace && chown studio:studio /workspace
USER studio
VOLUME ["/workspace"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"

ENTRYPOINT ["/usr/bin/tini", "--", "studio-entrypoint"]
