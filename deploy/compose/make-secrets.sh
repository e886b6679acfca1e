#!/bin/sh
# make-secrets.sh CAIRN DIR: write the compose cluster's secrets into DIR
# once (mode 0600): admin.token, worker.token and tokens (the initial-tokens
# file the masters journal), and s3.env (the keys of the cluster's S3 server:
# versitygw reads ROOT_*, masters and workers the standard AWS_* variables).
# Existing files are left as they are, so a cluster keeps its secrets across
# `make image`; put your own there instead if you have them.
set -eu
bin=$1 dir=$2
umask 077
mkdir -p "$dir"
if ! { [ -s "$dir/tokens" ] && [ -s "$dir/admin.token" ] && [ -s "$dir/worker.token" ]; }; then
	admin=$("$bin" auth token new)
	worker=$("$bin" auth token new)
	printf '%s\n' "$admin" >"$dir/admin.token"
	printf '%s\n' "$worker" >"$dir/worker.token"
	printf 'admin admin %s\nworkers worker %s\n' "$admin" "$worker" >"$dir/tokens"
	echo "wrote new tokens to $dir (admin.token, worker.token, tokens)"
fi
if [ ! -s "$dir/s3.env" ]; then
	secret=$("$bin" auth token new)
	printf 'ROOT_ACCESS_KEY_ID=cairn\nROOT_SECRET_ACCESS_KEY=%s\nAWS_ACCESS_KEY_ID=cairn\nAWS_SECRET_ACCESS_KEY=%s\nAWS_REGION=us-east-1\n' "$secret" "$secret" >"$dir/s3.env"
	echo "wrote new S3 keys to $dir/s3.env"
fi
