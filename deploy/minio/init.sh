#!/bin/bash
# One-shot set-up of MinIO as its root user (service minio-init): the pipeline bucket, the pipeline's own
# access key with a policy limited to that bucket (pipeline-policy.json), and the inbox/ notification.
# Idempotent: every `docker compose up` runs it again (a changed STT_S3_SECRET_KEY is applied).
#
#   init.sh                 # set up MinIO at $MINIO_URL (default http://minio:9000)
#   init.sh --print-policy  # only print the pipeline's policy for $STT_BUCKET
set -euo pipefail

POLICY_NAME=stt-pipeline
here="${BASH_SOURCE[0]%/*}"

bucket="${STT_BUCKET:?set STT_BUCKET}"
# S3 bucket names: lower-case letters, digits, '.' and '-' (this also keeps the policy JSON intact).
if [[ ! "$bucket" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]]; then
    echo "minio-init: STT_BUCKET '$bucket' is no valid bucket name" >&2
    exit 1
fi

policy_template="$(<"$here/pipeline-policy.json")"
policy="${policy_template//'${STT_BUCKET}'/"$bucket"}"
if [[ "${1-}" == --print-policy ]]; then
    printf '%s\n' "$policy"
    exit 0
fi

access_key="${STT_S3_ACCESS_KEY:?set STT_S3_ACCESS_KEY}"
if [[ "$access_key" == "${MINIO_ROOT_USER:?set MINIO_ROOT_USER}" ]]; then
    echo "minio-init: STT_S3_ACCESS_KEY must differ from MINIO_ROOT_USER (the pipeline never uses the root account)" >&2
    exit 1
fi

mc alias set local "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD}"
mc mb --ignore-existing "local/$bucket"

policy_file="$(mktemp)"
printf '%s\n' "$policy" > "$policy_file"
mc admin policy create local "$POLICY_NAME" "$policy_file"
rm -f "$policy_file"

mc admin user add local "$access_key" "${STT_S3_SECRET_KEY:?set STT_S3_SECRET_KEY}"
if [[ "$(mc admin user info local "$access_key")" != *"$POLICY_NAME"* ]]; then
    mc admin policy attach local "$POLICY_NAME" --user "$access_key"  # attaching twice is an error
fi

mc event add "local/$bucket" arn:minio:sqs::stt:redis --event put,delete --prefix inbox/ --ignore-existing
mc event list "local/$bucket"
