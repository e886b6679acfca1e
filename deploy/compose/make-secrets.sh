#!/bin/sh
# make-secrets.sh CAIRN DIR: write the compose cluster's tokens into DIR
# once (mode 0600): admin.token, worker.token and tokens (the initial-tokens
# file the masters journal). Existing files are left as they are, so a
# cluster keeps its tokens across `make image`; put your own there instead
# if you have them.
set -eu
bin=$1 dir=$2
umask 077
mkdir -p "$dir"
if [ -s "$dir/tokens" ] && [ -s "$dir/admin.token" ] && [ -s "$dir/worker.token" ]; then
	exit 0
fi
admin=$("$bin" auth token new)
worker=$("$bin" auth token new)
printf '%s\n' "$admin" >"$dir/admin.token"
printf '%s\n' "$worker" >"$dir/worker.token"
printf 'admin admin %s\nworkers worker %s\n' "$admin" "$worker" >"$dir/tokens"
echo "wrote new tokens to $dir (admin.token, worker.token, tokens)"
