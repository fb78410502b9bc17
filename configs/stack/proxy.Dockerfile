# The LiteLLM proxy with costrouter's plugin, built from this checkout (docker-compose.yml).
FROM python:3.12.8-slim
COPY . /src
RUN pip install --no-cache-dir "/src[proxy]"
ENV LITELLM_LOCAL_MODEL_COST_MAP=True
ENTRYPOINT ["litellm"]
