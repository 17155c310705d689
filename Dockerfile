# agape-ops: the bot, its runbooks and its team file in one image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 agape
WORKDIR /app

COPY pyproject.toml README.md ./
COPY agape_ops ./agape_ops
RUN pip install .

COPY runbooks ./runbooks
COPY team.yaml ./team.yaml

USER agape
ENV RUNBOOKS_DIR=/app/runbooks OPS_TEAM_FILE=/app/team.yaml
ENTRYPOINT ["agape-ops"]
CMD ["console"]
