#!/bin/sh
# Run once by the postgres image when it creates the database (docker-compose.yml):
# lets the replica service stream this server's write-ahead log, with a password.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
