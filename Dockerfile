# The outreach orchestrator on the official Airflow image: our DAGs, plugin, config, templates
# and packages. Production runs PostgreSQL for Airflow and the app (OUTREACH_DATABASE_URL) with
# the CeleryExecutor or KubernetesExecutor, as configured by the deployment.
FROM apache/airflow:3.3.2-python3.11

# Fonts embedded in the PDF letters: Latin (DejaVu) and Chinese (WenQuanYi Zen Hei), so every
# worker prints the same bytes (docs/letters.md).
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-wqy-zenhei \
    && rm -rf /var/lib/apt/lists/*

# Direct dependencies, resolved to the versions we test with (the lock as constraints).
COPY --chown=airflow:root requirements.txt requirements.lock /opt/outreach/
USER airflow
RUN pip install --no-cache-dir -r /opt/outreach/requirements.txt -c /opt/outreach/requirements.lock

# What operations edit and what the messages are made of, outside the installed packages.
COPY --chown=airflow:root config/ /opt/outreach/config/
COPY --chown=airflow:root templates/ /opt/outreach/templates/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/

# Our packages (outreach, policies, contact_channels, fakes); dependencies are already in.
COPY --chown=airflow:root pyproject.toml /opt/outreach/src/
COPY --chown=airflow:root outreach/ /opt/outreach/src/outreach/
COPY --chown=airflow:root policies/ /opt/outreach/src/policies/
COPY --chown=airflow:root contact_channels/ /opt/outreach/src/contact_channels/
COPY --chown=airflow:root fakes/ /opt/outreach/src/fakes/
RUN cp /opt/outreach/requirements.txt /opt/outreach/src/requirements.txt \
    && pip install --no-cache-dir --no-deps /opt/outreach/src

ENV OUTREACH_CONFIG_DIR=/opt/outreach/config \
    OUTREACH_TEMPLATES_DIR=/opt/outreach/templates \
    OUTREACH_DATA_DIR=/opt/airflow/data \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
