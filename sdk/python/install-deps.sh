#!/bin/sh
# Installs what the Python SDK needs, from Debian's archive only (no PyPI):
# protoc and the gRPC Python plugin for `make generate`, and the runtime and
# pytest for the tests. Does nothing when everything is there already, so
# `make test` and `make generate` call it every time.
set -eu

PACKAGES="protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf python3-xxhash python3-pytest"
PY=/usr/bin/python3

present() {
	command -v protoc >/dev/null 2>&1 &&
		command -v grpc_python_plugin >/dev/null 2>&1 &&
		[ -x "$PY" ] &&
		"$PY" -c 'import grpc, google.protobuf, xxhash, pytest' >/dev/null 2>&1
}

if present; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: missing protoc, grpc_python_plugin or a Python module, and no apt-get here; install: $PACKAGES" >&2
	exit 1
fi
SUDO=
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "install-deps: need root (or sudo) to install: $PACKAGES" >&2
		exit 1
	fi
fi
echo "install-deps: installing $PACKAGES" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
if ! present; then
	echo "install-deps: installed $PACKAGES, but protoc, grpc_python_plugin or a module of $PY is still missing" >&2
	exit 1
fi
