# smsgate image: a wheel built in one stage, installed into a slim runtime as a non-root user.
# Docker is not available on the machine this project is developed on; tests/test_deploy.py
# checks what can be checked without it (see docs/deploy.md).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN groupadd --system smsgate \
    && useradd --system --gid smsgate --home-dir /app --create-home smsgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER smsgate
WORKDIR /app
ENV SMSGATE_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["smsgate"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--no-migrate", "--no-worker"]
