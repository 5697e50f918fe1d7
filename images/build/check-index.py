"""Build step: proves the Python package index answers over verified TLS before pip runs, so a build
without network or without the right CA fails with the cause named, not pip's retries.

Usage: python3 check-index.py CA_FILE. The index is pip's own setting (PIP_INDEX_URL, else pip's
default).
"""

import os
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

ca_file = sys.argv[1]
index = os.environ.get("PIP_INDEX_URL") or ""
if not index:
    from pip._internal.models.index import PyPI

    index = PyPI.simple_url
# What the messages name: the index's scheme, host, port and path, never user information (an index
# URL may carry credentials, and build logs are kept).
parts = urllib.parse.urlsplit(index)
host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
shown = parts._replace(netloc=host).geturl()


def fail(message):
    print(f"BUILD ERROR: {message}", file=sys.stderr)
    sys.exit(1)


context = ssl.create_default_context(cafile=ca_file)
try:
    urllib.request.urlopen(index, timeout=30, context=context).close()
except urllib.error.HTTPError:
    pass  # an answer, so the network and TLS are fine; pip reports index errors itself
except urllib.error.URLError as e:
    reason = e.reason
    if isinstance(reason, ssl.SSLCertVerificationError):
        fail(
            f"the package index {shown} presented a certificate this build does not trust "
            f"({reason.verify_message}). Behind a TLS-intercepting proxy, give the build the "
            "proxy's CA bundle: scripts/images.sh --ca-bundle FILE"
        )
    if isinstance(reason, (socket.gaierror, OSError)):
        fail(f"no network: cannot reach the package index {shown} ({reason})")
    fail(f"cannot reach the package index {shown} ({reason})")
except (TimeoutError, socket.timeout):
    fail(f"no network: the package index {shown} did not answer within 30 s")
print(f"package index {shown} reachable")
