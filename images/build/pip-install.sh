#!/bin/sh
# Makes a virtualenv and installs a requirements file into it during an image build (shared by the
# Dockerfiles, bind-mounted for the RUN that calls it, never copied into a layer):
#   pip-install.sh [--system-site-packages] VENV REQUIREMENTS
# pip trusts the image's CA bundle and, when the build has them, the BuildKit secrets "ca" (extra CA
# certificates, for a TLS-intercepting proxy) and "pip-index" (the builder's package index, whose URL
# may carry credentials); neither is kept in a layer. The requirements may name versions as ${NAME}
# (versions.env), which pip fills in from the build arguments. Before pip runs, check-index.py proves
# the index answers over verified TLS, so a build without network or CA names the cause.
set -eu
venv_options=""
if [ "$1" = --system-site-packages ]; then
  # Also turns on the user site (~/.local), where `pip install --user` puts packages.
  venv_options=$1
  shift
fi
venv=$1 requirements=$2
ca=/etc/ssl/certs/ca-certificates.crt
if [ -s /run/secrets/ca ]; then
  ca=/tmp/hap-ca.pem
  cat /etc/ssl/certs/ca-certificates.crt /run/secrets/ca >"$ca"
fi
if [ -s /run/secrets/pip-index ]; then
  PIP_INDEX_URL=$(cat /run/secrets/pip-index)
  export PIP_INDEX_URL
fi
# shellcheck disable=SC2086 # an option or nothing
python3 -m venv $venv_options "$venv"
python3 "$(dirname "$0")/check-index.py" "$ca"
PIP_CERT=$ca "$venv/bin/pip" install --disable-pip-version-check -r "$requirements"
rm -f /tmp/hap-ca.pem
