#!/bin/sh
# Refuses to start the stack while a secret is missing, still a placeholder, weak or shared with another one.
# Run by the one-shot service check-secrets (docker-compose.yaml), which every other service waits for.
#
#   check-secrets.sh NAME...    # NAME: an environment variable holding a secret
#
# POSIX sh (the service runs it with busybox). Exit 0 when every secret is usable, else 1 with one line per problem.

MIN_LENGTH=12
# Documented placeholders and well-known defaults (compared in lower case).
PLACEHOLDERS="minioadmin airflow admin password secret example placeholder"

problems=0
refuse() {
    echo "check-secrets: $1" >&2
    problems=$((problems + 1))
}

is_placeholder() {
    lower=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')
    case "$lower" in
        *change-me* | *changeme* | *change_me*) return 0 ;;
    esac
    for word in $PLACEHOLDERS; do
        [ "$lower" = "$word" ] && return 0
    done
    return 1
}

for name in "$@"; do
    eval "value=\${$name-}"
    if [ -z "$value" ]; then
        refuse "$name is not set: put a value in .env (see .env.example)"
    elif is_placeholder "$value"; then
        refuse "$name is still a placeholder: replace it in .env with a secret of your own"
    elif [ "$name" = AIRFLOW_FERNET_KEY ]; then
        # A Fernet key is 32 bytes in URL-safe base64: 43 characters and one '='.
        case "$value" in
            *[!A-Za-z0-9_=-]* | *=*=* | *[!=]) fernet_ok=no ;;
            *) fernet_ok=yes ;;
        esac
        if [ "$fernet_ok" = no ] || [ "${#value}" -ne 44 ]; then
            refuse "AIRFLOW_FERNET_KEY is no Fernet key: generate one with python -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\""
        fi
    elif [ "${#value}" -lt "$MIN_LENGTH" ]; then
        refuse "$name is too short: use at least $MIN_LENGTH characters"
    else
        case "$value" in
            # Secrets end up in connection URLs and JSON connection strings.
            *[!A-Za-z0-9_-]*) refuse "$name may hold only letters, digits, '-' and '_' (it is part of connection URLs)" ;;
        esac
    fi
done

# A secret shared by two accounts (e.g. the pipeline's and the root one) undoes their separation.
checked=""
for name in "$@"; do
    eval "value=\${$name-}"
    [ -n "$value" ] || continue
    for other in $checked; do
        eval "other_value=\${$other-}"
        if [ "$value" = "$other_value" ]; then
            refuse "$name and $other have the same value: give each its own secret"
        fi
    done
    checked="$checked $name"
done

if [ "$problems" -gt 0 ]; then
    echo "check-secrets: refusing to start: $problems problem(s) above; fix .env and run docker compose up again" >&2
    exit 1
fi
echo "check-secrets: $# secrets set, none a placeholder"
