# PostgreSQL for scripts/docker_check.sh only: the shipped compose file uses the official
# postgres image, which no registry here can provide, so this builds Debian's PostgreSQL on
# the debootstrap base and honours the same POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB.
ARG BASE=raven-base:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data \
    && chown postgres:postgres /var/lib/postgresql/data \
    && chmod 700 /var/lib/postgresql/data
COPY docker/check/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
VOLUME ["/var/lib/postgresql/data"]
CMD ["postgres-entrypoint"]
