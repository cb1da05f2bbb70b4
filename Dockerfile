# facade: the FHIR server. Without a stored vendor connection it serves the embedded sandbox.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY facade ./facade
COPY mappings ./mappings
COPY capability ./capability
RUN pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 facade \
 && mkdir /data && chown facade /data

USER facade
ENV FACADE_HOST=0.0.0.0 \
    FACADE_PORT=8080 \
    FACADE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
CMD ["facade", "serve"]
