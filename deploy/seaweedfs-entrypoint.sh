#!/bin/sh
# Entry point of the seaweedfs service in docker-compose.yml.
#
# SeaweedFS reads S3 identities from a JSON file and cannot take them from the
# environment in a way we can pin across versions, while compose keeps secrets in
# .env. So: render the mounted template (deploy/s3.json) with S3_ACCESS_KEY and
# S3_SECRET_KEY into a private file, then exec weed with it. Keys are limited to
# characters that need no escaping in JSON or sed (what `openssl rand -hex` or
# `-base64` produce), and a bad or missing key stops the container with a message
# instead of starting an S3 server nobody can log in to.
set -eu

TEMPLATE="${S3_CONFIG_TEMPLATE:-/etc/sohoa/s3.json.template}"
RENDERED="${S3_CONFIG:-/tmp/s3.json}"
WEED="${WEED:-/usr/bin/weed}"

check() {
  case "$2" in
    "") echo "seaweedfs: $1 is not set (see .env)" >&2; exit 64 ;;
    *[!A-Za-z0-9._~+/=-]*)
      echo "seaweedfs: $1 may hold only letters, digits and . _ ~ + / = -" >&2; exit 64 ;;
  esac
}
check S3_ACCESS_KEY "${S3_ACCESS_KEY:-}"
check S3_SECRET_KEY "${S3_SECRET_KEY:-}"

# SSE-S3 key encryption key: weed reads WEED_S3_SSE_KEK itself. A malformed one must
# stop the container here, not leave a store that silently writes plaintext.
kek="${WEED_S3_SSE_KEK:-}"
if [ "${#kek}" -ne 64 ] || [ -n "$(printf '%s' "$kek" | tr -d '0-9a-fA-F')" ]; then
  echo "seaweedfs: WEED_S3_SSE_KEK (S3_SSE_KEK in .env) must be 64 hex digits (openssl rand -hex 32)" >&2
  exit 64
fi

umask 077
sed -e "s|\${S3_ACCESS_KEY}|${S3_ACCESS_KEY}|g" \
    -e "s|\${S3_SECRET_KEY}|${S3_SECRET_KEY}|g" \
    "$TEMPLATE" > "$RENDERED"

# The flags come from the compose command (`mini -dir=/data ...`); the config is ours.
exec "$WEED" "$@" "-s3.config=$RENDERED"
