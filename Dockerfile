# agape-ops: the bot, its runbooks and its team file in one image. It runs `agape-ops serve`:
# Socket Mode when SLACK_APP_TOKEN is set, else HTTP; /healthz and /metrics on PORT either way.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 agape
WORKDIR /app

# Every runtime dependency at the exact version in constraints.txt (`make lock` writes it).
# The dependencies get their own layer, so a change to the code alone does not reinstall them.
COPY constraints.txt ./
RUN pip install --no-cache-dir -r constraints.txt
COPY pyproject.toml README.md ./
COPY agape_ops ./agape_ops
RUN pip install --no-cache-dir -c constraints.txt .

COPY runbooks ./runbooks
COPY team.yaml ./team.yaml

USER agape
ENV RUNBOOKS_DIR=/app/runbooks OPS_TEAM_FILE=/app/team.yaml
EXPOSE 3000
# 200 from /healthz when Slack and the store answer; 503 (or no answer) makes this fail.
# python:3.11-slim has no curl: Python's urllib asks instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + (os.environ.get('PORT') or '3000') + '/healthz', timeout=4)"]
ENTRYPOINT ["agape-ops"]
CMD ["serve"]
