#!/bin/bash
# The pipeline's MongoDB user: readWrite on the database $STT_MONGO_DB only (the jobs store), never root.
# The mongo image runs it once, when it initialises an empty data volume (mounted in /docker-entrypoint-initdb.d).
# For a volume initialised before, or to apply a new STT_MONGO_PASSWORD, run it again by hand:
#
#   docker compose exec mongo bash /docker-entrypoint-initdb.d/create-pipeline-user.sh
#
# Credentials travel in the environment only (mongosh reads them through process.env), not on a command line.
: "${STT_MONGO_DB:?set STT_MONGO_DB}" "${STT_MONGO_USER:?set STT_MONGO_USER}" "${STT_MONGO_PASSWORD:?set STT_MONGO_PASSWORD}"
: "${MONGO_INITDB_ROOT_USERNAME:?set MONGO_ROOT_USER}" "${MONGO_INITDB_ROOT_PASSWORD:?set MONGO_ROOT_PASSWORD}"

mongosh --host 127.0.0.1 --port 27017 --quiet --eval '
  const env = process.env;
  db.getSiblingDB("admin").auth(env.MONGO_INITDB_ROOT_USERNAME, env.MONGO_INITDB_ROOT_PASSWORD);
  const target = db.getSiblingDB(env.STT_MONGO_DB);
  const roles = [{ role: "readWrite", db: env.STT_MONGO_DB }];
  if (target.getUser(env.STT_MONGO_USER)) {
    target.updateUser(env.STT_MONGO_USER, { pwd: env.STT_MONGO_PASSWORD, roles: roles });
    print(`updated MongoDB user ${env.STT_MONGO_USER}: readWrite on ${env.STT_MONGO_DB} only`);
  } else {
    target.createUser({ user: env.STT_MONGO_USER, pwd: env.STT_MONGO_PASSWORD, roles: roles });
    print(`created MongoDB user ${env.STT_MONGO_USER}: readWrite on ${env.STT_MONGO_DB} only`);
  }
'
